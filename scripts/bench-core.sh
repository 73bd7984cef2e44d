#!/usr/bin/env bash
# Performance floor: one 512 MiB single-file torrent over loopback from ONE
# libtorrent seeder to (a) a shoal leecher and (b) a libtorrent leecher,
# measured alternately in the same run (shoal, lt, shoal, lt, ...). Prints
# MB/s for each run, the shoal leecher's peak RSS (VmHWM) and the ratio.
# Exits non-zero only on errors (missing tools, failed or corrupt
# transfers), never because something is slow.
#
#   scripts/bench-core.sh              # SIZE_MIB=512 ROUNDS=2
#   SIZE_MIB=128 ROUNDS=3 scripts/bench-core.sh
#
# Needs python3-libtorrent and mktorrent. Traffic stays on 127.0.0.1: the
# leechers are pointed at the seeder directly (no tracker, no DHT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SIZE_MIB=${SIZE_MIB:-512}
ROUNDS=${ROUNDS:-2}
TIMEOUT=${TIMEOUT:-600}   # seconds per transfer
PY=/usr/bin/python3
pydir="$root/test/clients/py"

command -v mktorrent >/dev/null || { echo "bench-core: mktorrent is not installed" >&2; exit 2; }
$PY -c 'import libtorrent' 2>/dev/null || { echo "bench-core: python3-libtorrent is not installed" >&2; exit 2; }

# data on tmpfs when it has room (data + one copy + slack)
base=${BENCH_DIR:-}
if [ -z "$base" ]; then
    avail_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2{print $4}')
    if [ -n "$avail_kib" ] && [ "$avail_kib" -gt $((SIZE_MIB * 1024 * 3)) ]; then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
fi
work=$(mktemp -d "$base/shoal-bench-XXXXXX")
pids=()
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${pids[@]}"; do stop_pid "$p"; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    echo "no free port" >&2
    return 1
}

echo "== building shoal"
go build -o "$work/shoal" ./cmd/shoal

echo "== ${SIZE_MIB} MiB of random data in $work"
mkdir -p "$work/seed"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$work/seed/bench.bin"
bytes=$((SIZE_MIB * 1048576))
# mktorrent needs an announce URL: a loopback port nobody listens on
mktorrent -d -l 20 -a "http://127.0.0.1:9/announce" -o "$work/bench.torrent" "$work/seed/bench.bin" >/dev/null

seed_port=$(free_port)
$PY "$pydir/seed.py" --port "$seed_port" --dir "$work/seed" --ready "$work/seed.ready" \
    --max-seconds 7200 "$work/bench.torrent" >"$work/seed.log" 2>&1 &
seed_pid=$!
pids+=("$seed_pid")
for i in $(seq 600); do   # the seeder hashes 512 MiB first
    [ -f "$work/seed.ready" ] && break
    kill -0 "$seed_pid" 2>/dev/null || { echo "libtorrent seeder exited:"; cat "$work/seed.log"; exit 1; }
    [ "$i" = 600 ] && { echo "libtorrent seeder not ready after 60 s"; cat "$work/seed.log"; exit 1; }
    sleep 0.1
done
echo "== libtorrent seeder ready on 127.0.0.1:$seed_port"

# run_one KIND ROUND: one transfer into a fresh dir; sets RES_MBS and RES_RSS_KIB
run_one() {
    local kind=$1 round=$2 out="$work/out-$1-$2" port pid t0 t1 rc=0 hwm=0 h log="$work/get-$1-$2.log"
    port=$(free_port)
    mkdir -p "$out"
    t0=$(date +%s.%N)
    if [ "$kind" = shoal ]; then
        "$work/shoal" get --peer "127.0.0.1:$seed_port" --listen "127.0.0.1:$port" --no-dht \
            -o "$out" "$work/bench.torrent" >"$log" 2>&1 &
    else
        $PY "$pydir/get.py" --port "$port" --out "$out" --timeout "$TIMEOUT" \
            --peer "127.0.0.1:$seed_port" "$work/bench.torrent" >"$log" 2>&1 &
    fi
    pid=$!
    pids+=("$pid")
    local end=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        h=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
        if ((SECONDS >= end)); then
            echo "$kind round $round: not done after ${TIMEOUT}s" >&2
            tail -20 "$log" >&2
            stop_pid "$pid"
            return 1
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" != 0 ]; then
        echo "$kind round $round: exit status $rc" >&2
        tail -20 "$log" >&2
        return 1
    fi
    cmp "$work/seed/bench.bin" "$out/bench.bin" || { echo "$kind round $round: copy differs" >&2; return 1; }
    rm -rf "$out"
    RES_MBS=$(awk -v a="$t0" -v b="$t1" -v n="$bytes" 'BEGIN { printf "%.1f", n / 1e6 / (b - a) }')
    RES_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RES_RSS_KIB=$hwm
}

declare -a shoal_mbs lt_mbs
peak_rss=0
printf '\n%-6s %-10s %8s %8s %s\n' round leecher seconds 'MB/s' 'peak RSS'
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in shoal lt; do
        run_one "$kind" "$r"
        if [ "$kind" = shoal ]; then
            shoal_mbs+=("$RES_MBS")
            [ "$RES_RSS_KIB" -gt "$peak_rss" ] && peak_rss=$RES_RSS_KIB
            printf '%-6s %-10s %8s %8s %d MiB\n' "$r" shoal "$RES_SECS" "$RES_MBS" $((RES_RSS_KIB / 1024))
        else
            lt_mbs+=("$RES_MBS")
            printf '%-6s %-10s %8s %8s %s\n' "$r" libtorrent "$RES_SECS" "$RES_MBS" -
        fi
    done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
s=$(median "${shoal_mbs[@]}")
l=$(median "${lt_mbs[@]}")
echo
echo "summary: ${SIZE_MIB} MiB from one libtorrent seeder over loopback, ${ROUNDS} rounds each (median)"
echo "  shoal leecher:      $s MB/s, peak RSS $((peak_rss / 1024)) MiB"
echo "  libtorrent leecher: $l MB/s"
awk -v s="$s" -v l="$l" 'BEGIN { if (l > 0) printf "  ratio shoal/libtorrent: %.2f\n", s / l }'
echo "  (each time runs from process start to exit, so it includes start-up: about 0.3 s for python+libtorrent)"
