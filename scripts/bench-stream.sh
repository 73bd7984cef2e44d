#!/usr/bin/env bash
# Streaming figures on loopback, each from a cold start of
# `shoal stream --bench --bitrate X FILE.torrent` (no resume data, a fresh
# output folder): the simulated player buffers 2 s, plays at the bitrate and
# counts stalls; shoal reports first byte and startup (from process start),
# stalls, and bytes from peers and from web seeds.
#
#   scripts/bench-stream.sh                     # SIZE_MIB=6 BITRATE_BPS=2000000
#   SIZE_MIB=8 BITRATE_BPS=4000000 scripts/bench-stream.sh
#
# Scenarios (targets from the streaming issue):
#   startup     unlimited seeder, player at 40x the bitrate: first byte < 1 s
#   swarm-1.5x  one seeder at 1.5x the bitrate (--upload-limit): 0 stalls
#   peers-0.5x  seeder at 0.5x + a web seed (http.FileServer): 0 stalls
#   ws-1x       seeder at 0.5x + a web seed paced at 1x the bitrate: 0 stalls
#               (both sources must contribute for the player to keep up)
# The web seed is test/stream/fileserver (Go's http.FileServer, -rate paces
# each response). Every process listens on 127.0.0.1 and is ended by PID.
# Exits non-zero only on errors, never because a figure is slow; the figures
# on a shared 2-core box are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SIZE_MIB=${SIZE_MIB:-6}
BITRATE_BPS=${BITRATE_BPS:-2000000} # bits/s of the simulated player
PIECE=${PIECE:-65536}
TIMEOUT=${TIMEOUT:-180}             # seconds per scenario
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go

work=$(mktemp -d /tmp/shoal-bench-stream-XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building shoal and the web seed server"
"$GO" build -o "$work/shoal" ./cmd/shoal
"$GO" build -o "$work/fileserver" ./test/stream/fileserver
shoal=$work/shoal

free_port() { # a TCP port on 127.0.0.1 in [20000, 32000) nobody listens on
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "bench-stream: no free port" >&2; exit 1
}
wait_port() { # wait_port PORT SECONDS
    local i
    for i in $(seq $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench-stream: nothing listening on 127.0.0.1:$1" >&2; return 1
}
start_fileserver() { # start_fileserver RATE -> sets fs_url
    local port; port=$(free_port)
    "$work/fileserver" -listen "127.0.0.1:$port" -dir "$work/data" -rate "$1" >"$work/fs-$port.log" 2>&1 &
    pids+=($!)
    wait_port "$port" 10
    fs_url="http://127.0.0.1:$port/clip.webm"
}

mkdir -p "$work/data"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/data/clip.webm"
bps=$((BITRATE_BPS / 8)) # bytes/s
start_fileserver 0;      ws_fast=$fs_url
start_fileserver "$bps"; ws_1x=$fs_url
"$shoal" create --no-date --piece-length "$PIECE" -o "$work/plain.torrent" "$work/data/clip.webm" >/dev/null
"$shoal" create --no-date --piece-length "$PIECE" --web-seed "$ws_fast" -o "$work/ws.torrent" "$work/data/clip.webm" >/dev/null
"$shoal" create --no-date --piece-length "$PIECE" --web-seed "$ws_1x" -o "$work/ws1x.torrent" "$work/data/clip.webm" >/dev/null

results=()
# run NAME TORRENT SEEDER_LIMIT(bytes/s, 0 = unlimited) PLAYER_BITRATE(bits/s)
run() {
    local name=$1 torrent=$2 limit=$3 rate=$4 sport spid out log
    sport=$(free_port)
    "$shoal" seed --listen "127.0.0.1:$sport" -d "$work/data" --no-dht --upload-limit "$limit" "$work/plain.torrent" \
        >"$work/seed-$name.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    wait_port "$sport" 20
    out=$work/out-$name
    log=$work/bench-$name.log
    mkdir -p "$out"
    echo "== $name: seeder limit ${limit} B/s, player ${rate} bit/s, $(basename "$torrent")"
    if ! timeout "$TIMEOUT" "$shoal" stream --bench --bitrate "$rate" --no-dht --listen 127.0.0.1:0 \
        --peer-listen "127.0.0.1:$(free_port)" --peer "127.0.0.1:$sport" -o "$out" "$torrent" >"$log" 2>&1; then
        cat "$log" >&2
        echo "bench-stream: $name failed" >&2
        exit 1
    fi
    grep -E '^(bitrate|first byte|startup delay|stalls|played|from peers|from web seeds)' "$log" | sed 's/^/   /'
    cmp -s "$work/data/clip.webm" "$out/clip.webm" || { echo "bench-stream: $name: downloaded file differs" >&2; exit 1; }
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    local fb st stalls peers ws
    fb=$(sed -n 's/^first byte *//p' "$log")
    st=$(sed -n 's/^startup delay *//p' "$log")
    stalls=$(sed -n 's/^stalls *\([0-9]*\).*/\1/p' "$log")
    peers=$(sed -n 's/^from peers .*(\([0-9]*\) bytes)/\1/p' "$log")
    ws=$(sed -n 's/^from web seeds .*(\([0-9]*\) bytes)/\1/p' "$log")
    results+=("$(printf '%-11s %-9s %-9s %6s %12s %12s' "$name" "$fb" "$st" "$stalls" "$peers" "$ws")")
}

run startup    "$work/plain.torrent" 0                 $((BITRATE_BPS * 40))
run swarm-1.5x "$work/plain.torrent" $((bps * 3 / 2))  "$BITRATE_BPS"
run peers-0.5x "$work/ws.torrent"    $((bps / 2))      "$BITRATE_BPS"
run ws-1x      "$work/ws1x.torrent"  $((bps / 2))      "$BITRATE_BPS"

echo
echo "shoal stream --bench on loopback: ${SIZE_MIB} MiB, pieces of $PIECE bytes, bitrate $BITRATE_BPS bit/s"
echo "targets: first byte < 1 s (cold, .torrent); 0 stalls at swarm 1.5x; 0 stalls with a web seed and peers at 0.5x"
printf '%-11s %-9s %-9s %6s %12s %12s\n' scenario "1st byte" startup stalls "peer bytes" "webseed B"
printf '%s\n' "${results[@]}"
