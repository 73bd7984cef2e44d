#!/usr/bin/env bash
# bench-tracker.sh: UDP announce throughput and memory of `shoal tracker`
# against opentracker, in one run, on loopback.
#
#   scripts/bench-tracker.sh [TORRENTS] [PEERS_PER_TORRENT] [SECONDS]
#
# Both trackers get the same load from bench/trackerload (fill: every peer
# announces once; steady: random re-announces for SECONDS), one after the
# other on the same port. opentracker (Debian package) is whitelist-only,
# so the generated info-hashes are written to its whitelist; shoal runs
# public with rate limiting off. Prints each tracker's figures, then the
# ratios. Memory: peak RSS (VmHWM) minus RSS before the load, per peer held.
set -euo pipefail

TORRENTS=${1:-10000}
PEERS=${2:-20}
SECS=${3:-10}
PORT=${BENCH_TRACKER_PORT:-26970}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/bench-tracker.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v opentracker >/dev/null || { echo "opentracker not installed (apt-get install opentracker)" >&2; exit 1; }

echo "building shoal and trackerload..."
(cd "$ROOT" && go build -o "$WORK/shoal" ./cmd/shoal && go build -o "$WORK/trackerload" ./bench/trackerload)

wait_udp() { # wait until the tracker answers HTTP on the same port
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "tracker did not start" >&2; return 1
}

stop() { kill "$1" 2>/dev/null || true; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }

load() { # LABEL PID
    "$WORK/trackerload" -target "127.0.0.1:$PORT" -torrents "$TORRENTS" -peers "$PEERS" \
        -duration "${SECS}s" -pid "$2" -label "$1" | tee "$WORK/$1.out"
}

# ---- shoal
"$WORK/shoal" tracker --http "127.0.0.1:$PORT" --udp "127.0.0.1:$PORT" --rate-limit 0 \
    >"$WORK/shoal.log" 2>&1 &
SPID=$!; PIDS+=("$SPID")
wait_udp
load shoal "$SPID"
stop "$SPID"

# ---- opentracker
OT="$WORK/ot"; mkdir -p "$OT"; chmod 755 "$WORK" "$OT"
"$WORK/trackerload" -write-hashes "$OT/whitelist.txt" -torrents "$TORRENTS"
chmod 644 "$OT/whitelist.txt"
cat >"$OT/opentracker.conf" <<EOF
listen.tcp_udp 127.0.0.1:$PORT
access.whitelist whitelist.txt
access.stats 127.0.0.1
tracker.rootdir $OT
tracker.user nobody
EOF
opentracker -f "$OT/opentracker.conf" >"$OT/log" 2>&1 &
OPID=$!; PIDS+=("$OPID")
wait_udp
sleep 1 # whitelist is loaded asynchronously
load opentracker "$OPID"
stop "$OPID"

field() { sed -n "s/.*RESULT .* $2=\([0-9.]*\).*/\1/p" "$WORK/$1.out"; }
S_RATE=$(field shoal announces_per_sec); O_RATE=$(field opentracker announces_per_sec)
S_MEM=$(field shoal bytes_per_peer); O_MEM=$(field opentracker bytes_per_peer)
echo
echo "== $TORRENTS torrents x $PEERS peers, ${SECS}s steady UDP announces, $(nproc) cores"
printf "%-12s %14s %16s\n" tracker "announces/s" "bytes/peer(peak)"
printf "%-12s %14s %16s\n" shoal "$S_RATE" "$S_MEM"
printf "%-12s %14s %16s\n" opentracker "$O_RATE" "$O_MEM"
awk -v a="$S_RATE" -v b="$O_RATE" -v c="$S_MEM" -v d="$O_MEM" 'BEGIN {
    if (b > 0) printf "throughput shoal/opentracker = %.2fx\n", a / b;
    if (d > 0) printf "memory per peer shoal/opentracker = %.2fx\n", c / d }'
