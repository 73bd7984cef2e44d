#!/usr/bin/env bash
# Performance floor: one 512 MiB single-file torrent over loopback from ONE
# libtorrent seeder to (a) a shoal leecher and (b) a libtorrent leecher,
# measured alternately in the same run (shoal, lt, shoal, lt, ...). Prints
# for each run the seconds and MB/s from the first TCP connection to verified
# completion, the same from process start, the leecher's CPU seconds and peak
# RSS (VmHWM, via /usr/bin/time), the machine load, and then the medians and
# the ratio. Exits non-zero only on errors (missing tools, failed or corrupt
# transfers), never because something is slow.
#
#   scripts/bench-core.sh              # SIZE_MIB=512 ROUNDS=2
#   SIZE_MIB=128 ROUNDS=3 scripts/bench-core.sh
#
# Both leechers are measured the same way (see bench/lib/bench.sh): from the
# first ESTABLISHED connection to the seeder until the process exits 0 after
# verifying every piece. libtorrent runs TCP-only (--no-utp): libtorrent 2.0
# dials uTP first, and uTP on loopback runs at ~10 MB/s; that, not the
# leecher, was why an earlier version of this script measured 6.5 MB/s.
# get.py polls its status every 20 ms (--poll 0.02).
#
# Needs python3-libtorrent and mktorrent. Traffic stays on 127.0.0.1: the
# leechers are pointed at the seeder directly (no tracker, no DHT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=../bench/lib/bench.sh
. "$root/bench/lib/bench.sh"

SIZE_MIB=${SIZE_MIB:-512}
ROUNDS=${ROUNDS:-2}
TIMEOUT=${TIMEOUT:-600} # seconds per transfer
pydir="$root/test/clients/py"

command -v mktorrent >/dev/null || { echo "bench-core: mktorrent is not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-core: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
$BENCH_PY -c 'import libtorrent' 2>/dev/null || { echo "bench-core: python3-libtorrent is not installed" >&2; exit 2; }

work=$(bench_workdir "$SIZE_MIB" 2)
BENCH_WORK=$work
cleanup() {
    bench_stop_all
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building shoal"
go build -o "$work/shoal" ./cmd/shoal

echo "== ${SIZE_MIB} MiB of random data in $work"
mkdir -p "$work/seed"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$work/seed/bench.bin"
bytes=$((SIZE_MIB * 1048576))
# mktorrent needs an announce URL: a loopback port nobody listens on
mktorrent -d -l 20 -a "http://127.0.0.1:9/announce" -o "$work/bench.torrent" "$work/seed/bench.bin" >/dev/null

seed_port=$(bench_port)
$BENCH_PY "$pydir/seed.py" --no-utp --port "$seed_port" --dir "$work/seed" --ready "$work/seed.ready" \
    --max-seconds 7200 "$work/bench.torrent" >"$work/seed.log" 2>&1 &
seed_pid=$!
bench_track "$seed_pid"
if ! bench_wait_until 120 test -f "$work/seed.ready"; then
    echo "libtorrent seeder not ready after 120 s" >&2
    cat "$work/seed.log" >&2
    exit 1
fi
echo "== libtorrent seeder ready on 127.0.0.1:$seed_port (TCP only)"

# run_one KIND ROUND: one transfer into a fresh dir; sets RES_* figures
run_one() {
    local kind=$1 round=$2 out="$work/out-$1-$2" port name="get-$1-$2"
    port=$(bench_port)
    mkdir -p "$out"
    RES_LOAD=$(bench_load)
    if [ "$kind" = shoal ]; then
        bench_measure "$name" "$seed_port" "$port" "$TIMEOUT" exit - -- \
            "$work/shoal" get --peer "127.0.0.1:$seed_port" --listen "127.0.0.1:$port" --no-dht \
            -o "$out" "$work/bench.torrent"
    else
        bench_measure "$name" "$seed_port" "$port" "$TIMEOUT" exit - -- \
            $BENCH_PY "$pydir/get.py" --no-utp --poll 0.02 --port "$port" --out "$out" --timeout "$TIMEOUT" \
            --peer "127.0.0.1:$seed_port" "$work/bench.torrent"
    fi
    if [ "$M_OK" != 1 ]; then
        echo "$kind round $round: failed" >&2
        tail -20 "$work/$name.log" >&2
        return 1
    fi
    cmp "$work/seed/bench.bin" "$out/bench.bin" || { echo "$kind round $round: copy differs" >&2; return 1; }
    rm -rf "$out"
    RES_MBS=$(bench_rate "$bytes" "$M_CONN" "$M_DONE")
    RES_SECS=$(bench_secs "$M_CONN" "$M_DONE")
    RES_MBS0=$(bench_rate "$bytes" "$M_START" "$M_DONE")
    RES_SECS0=$(bench_secs "$M_START" "$M_DONE")
    RES_CPU=$M_CPU
    RES_RSS_KIB=$M_RSS_KIB
}

declare -a shoal_mbs lt_mbs
peak_rss=0
echo
echo "MB/s = 10^6 bytes/s from the first TCP connection to verified completion (exit 0);"
echo "'from start' counts from the leecher process start instead. load = 1-min load average."
printf '%-5s %-10s %8s %8s %12s %8s %8s %9s %5s\n' round leecher seconds 'MB/s' 'from start' 'MB/s' 'CPU s' 'peak RSS' load
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in shoal lt; do
        run_one "$kind" "$r"
        if [ "$kind" = shoal ]; then
            shoal_mbs+=("$RES_MBS")
            [ "$RES_RSS_KIB" -gt "$peak_rss" ] && peak_rss=$RES_RSS_KIB
        else
            lt_mbs+=("$RES_MBS")
        fi
        printf '%-5s %-10s %8s %8s %12s %8s %8s %5d MiB %5s\n' "$r" "$kind" "$RES_SECS" "$RES_MBS" \
            "$RES_SECS0" "$RES_MBS0" "$RES_CPU" $((RES_RSS_KIB / 1024)) "$RES_LOAD"
    done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
s=$(median "${shoal_mbs[@]}")
l=$(median "${lt_mbs[@]}")
echo
echo "summary: ${SIZE_MIB} MiB from one libtorrent seeder over loopback, ${ROUNDS} rounds each (median, from first connection)"
echo "  shoal leecher:      $s MB/s, peak RSS $((peak_rss / 1024)) MiB (floor: < 100 MiB)"
echo "  libtorrent leecher: $l MB/s"
awk -v s="$s" -v l="$l" 'BEGIN { if (l > 0) printf "  ratio shoal/libtorrent: %.2f (floor: >= 0.50)\n", s / l }'
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
