#!/usr/bin/env bash
# The README's "main job" demo: one shoal process seeds a 64 MiB file on
# 127.0.0.1, a second one downloads it, and cmp proves the copy is identical.
# Everything stays on loopback (--listen 127.0.0.1, --peer, --no-dht), every
# wait is bounded, and every process started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-64}
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo-XXXXXX")
seed_pid=""
cleanup() {
    if [ -n "$seed_pid" ] && kill -0 "$seed_pid" 2>/dev/null; then
        kill "$seed_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$seed_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$seed_pid" 2>/dev/null || true
        wait "$seed_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

# a free TCP port on 127.0.0.1, below the ephemeral range
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    echo "no free port" >&2
    return 1
}

say "building shoal"
go build -o "$work/shoal" ./cmd/shoal
shoal="$work/shoal"

say "making a ${SIZE_MIB} MiB file of random bytes"
mkdir -p "$work/seed" "$work/download"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$work/seed/demo.bin"
ls -l "$work/seed/demo.bin"

say "shoal create (no tracker: the downloader is told where the seeder is with --peer)"
"$shoal" create -o "$work/demo.torrent" "$work/seed/demo.bin"
"$shoal" info "$work/demo.torrent"

seed_port=$(free_port)
get_port=$(free_port)
say "shoal seed on 127.0.0.1:$seed_port"
"$shoal" seed --listen "127.0.0.1:$seed_port" -d "$work/seed" --no-dht "$work/demo.torrent" >"$work/seed.log" 2>&1 &
seed_pid=$!
for i in $(seq 300); do   # up to 30 s: it verifies the data before it listens
    (exec 3<>"/dev/tcp/127.0.0.1/$seed_port") 2>/dev/null && break
    kill -0 "$seed_pid" 2>/dev/null || { echo "seeder exited:"; cat "$work/seed.log"; exit 1; }
    [ "$i" = 300 ] && { echo "seeder not listening after 30 s:"; cat "$work/seed.log"; exit 1; }
    sleep 0.1
done

say "shoal get --peer 127.0.0.1:$seed_port"
start=$(date +%s.%N)
timeout 300 "$shoal" get --peer "127.0.0.1:$seed_port" --listen "127.0.0.1:$get_port" --no-dht \
    -o "$work/download" "$work/demo.torrent"
end=$(date +%s.%N)

say "checking the copy byte for byte"
cmp "$work/seed/demo.bin" "$work/download/demo.bin"
awk -v a="$start" -v b="$end" -v n="$((SIZE_MIB * 1048576))" \
    'BEGIN { printf "identical: %d bytes downloaded in %.2f s (%.1f MB/s)\n", n, b - a, n / 1e6 / (b - a) }'
say "done (seeder stopped, temporary files removed)"
