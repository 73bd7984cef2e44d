#!/usr/bin/env bash
# bench-transfer.sh: one seeder → one leecher, a 1 GiB single-file torrent
# (1 MiB pieces), over 127.0.0.1, for shoal→shoal, libtorrent→libtorrent and
# the mixed pairs with libtorrent, aria2 and Transmission, in one run. For
# each pair it prints MB/s, the leecher's CPU seconds (user+system), MB per
# CPU-second, the leecher's peak RSS (VmHWM) and the load average, then this
# machine's SHA-1 rate on one core (the physical limit of a verifying
# leecher) and the performance targets. Exits non-zero only on errors
# (missing tools, failed or corrupt transfers), never because of speed.
#
#   scripts/bench-transfer.sh                       # SIZE_MIB=1024, every pair
#   SIZE_MIB=256 PAIRS="shoal:shoal lt:lt" scripts/bench-transfer.sh
#
# Pairs are SEEDER:LEECHER with shoal, lt (python3-libtorrent 2.0, TCP only:
# its uTP runs at ~10 MB/s on loopback), aria2 and tr (transmission-daemon).
# aria2 and Transmission leechers cannot be given a peer address, and
# Transmission never dials 127.0.0.1 (it is a "martian" address): they are
# started first and the shoal seeder dials them (shoal seed --peer), so
# lt:aria2, lt:tr, aria2:aria2 and tr:tr are not run.
#
# Timing (bench/lib/bench.sh): from the first ESTABLISHED TCP connection
# between the two peers to the leecher's verified completion (a leecher that
# exits: exit status 0; Transmission: its RPC reports 100 %, polled every
# 0.1 s). Each seeder is started fresh for its pair and has finished checking
# its data before the leecher starts (shoal's resume record is removed first:
# with one, shoal would hash each piece on its first upload instead). CPU and peak RSS come from
# /usr/bin/time around the leecher (python start-up is included for lt).
# No tracker, no DHT, no LSD/UPnP/NAT-PMP/PEX: the torrent's announce URL is
# http://127.0.0.1:9/ where nothing listens.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=../bench/lib/bench.sh
. "$root/bench/lib/bench.sh"

SIZE_MIB=${SIZE_MIB:-1024}
PAIRS=${PAIRS:-"shoal:shoal lt:lt lt:shoal shoal:lt aria2:shoal shoal:aria2 tr:shoal shoal:tr"}
TIMEOUT=${TIMEOUT:-600} # seconds per transfer
pydir="$root/test/clients/py"

need() { command -v "$1" >/dev/null || { echo "bench-transfer: $1 is not installed" >&2; exit 2; }; }
need mktorrent
need curl
[ -x /usr/bin/time ] || { echo "bench-transfer: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
for p in $PAIRS; do
    case $p in
    *lt*) $BENCH_PY -c 'import libtorrent' 2>/dev/null || { echo "bench-transfer: python3-libtorrent is not installed" >&2; exit 2; } ;;
    esac
    case $p in *aria2*) need aria2c ;; esac
    case $p in *tr*) need transmission-daemon; need transmission-remote ;; esac
    case $p in
    shoal:shoal | lt:lt | lt:shoal | shoal:lt | aria2:shoal | shoal:aria2 | tr:shoal | shoal:tr) ;;
    *) echo "bench-transfer: pair $p is not supported" >&2; exit 2 ;;
    esac
done

work=$(bench_workdir "$SIZE_MIB" 2)
BENCH_WORK=$work
cleanup() {
    bench_stop_all
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building shoal and bench/sha1rate"
go build -o "$work/shoal" ./cmd/shoal
go build -o "$work/sha1rate" ./bench/sha1rate

echo "== ${SIZE_MIB} MiB of random data in $work"
mkdir -p "$work/seed"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$work/seed/bench.bin"
bytes=$((SIZE_MIB * 1048576))
mktorrent -d -l 20 -a "http://127.0.0.1:9/announce" -o "$work/bench.torrent" "$work/seed/bench.bin" >/dev/null
torrent=$work/bench.torrent

ARIA2_OPTS=(--no-conf=true --interface=127.0.0.1 --disable-ipv6=true
    --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --enable-peer-exchange=false --bt-save-metadata=false
    --file-allocation=none --summary-interval=0 --console-log-level=warn
    --auto-file-renaming=false --allow-overwrite=true)

# tr_config DIR PEERPORT RPCPORT DOWNLOADDIR: transmission-daemon settings that
# keep it on loopback (see /work/shared/interop/README.md), no speed limits.
tr_config() {
    mkdir -p "$1/cfg" "$4"
    cat >"$1/cfg/settings.json" <<EOF
{
    "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
    "blocklist-enabled": false, "blocklist-url": "", "cache-size-mb": 16,
    "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
    "port-forwarding-enabled": false, "peer-port": $2, "peer-port-random-on-start": false,
    "download-dir": "$4", "download-queue-enabled": false, "seed-queue-enabled": false,
    "queue-stalled-enabled": false, "incomplete-dir-enabled": false, "rename-partial-files": false,
    "encryption": 1, "message-level": 2, "preallocation": 1, "ratio-limit-enabled": false,
    "idle-seeding-limit-enabled": false, "speed-limit-down-enabled": false, "speed-limit-up-enabled": false,
    "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": $3,
    "rpc-authentication-required": false, "rpc-whitelist": "127.0.0.1", "rpc-whitelist-enabled": true,
    "rpc-host-whitelist-enabled": false, "start-added-torrents": true, "watch-dir-enabled": false,
    "trash-original-torrent-files": false, "script-torrent-done-enabled": false, "umask": 18
}
EOF
}
tr_done() { [ "$(transmission-remote "127.0.0.1:$1" -l 2>/dev/null | awk 'NR==2{print $2}')" = 100% ]; }
tr_up() { transmission-remote "127.0.0.1:$1" -l >/dev/null 2>&1; }
aria2_seeding() {
    curl -s --max-time 2 -d '{"jsonrpc":"2.0","id":"b","method":"aria2.tellActive","params":[["seeder","status"]]}' \
        "http://127.0.0.1:$1/jsonrpc" | grep -q '"seeder":"true"'
}

# start_seeder KIND PORT [DIALPEER]: a fresh seeder of $work/seed, ready
# (data checked) when it returns. Sets SEED_PID.
start_seeder() {
    local kind=$1 port=$2 dial=${3:-} d="$work/seeder-$1-$2"
    mkdir -p "$d"
    case $kind in
    shoal)
        local extra=()
        [ -n "$dial" ] && extra=(--peer "127.0.0.1:$dial")
        # no resume record: shoal then hashes the data at start like the other
        # seeders do, instead of hashing each piece on first upload
        rm -rf "$work/seed/.shoal"
        "$work/shoal" seed --no-dht --listen "127.0.0.1:$port" -d "$work/seed" "${extra[@]}" "$torrent" >"$d/log" 2>&1 &
        SEED_PID=$!
        bench_track "$SEED_PID"
        bench_wait_until 120 grep -q '^seeding' "$d/log" || { cat "$d/log" >&2; return 1; }
        ;;
    lt)
        $BENCH_PY "$pydir/seed.py" --no-utp --port "$port" --dir "$work/seed" --ready "$d/ready" \
            --max-seconds 3600 "$torrent" >"$d/log" 2>&1 &
        SEED_PID=$!
        bench_track "$SEED_PID"
        bench_wait_until 120 test -f "$d/ready" || { cat "$d/log" >&2; return 1; }
        ;;
    aria2)
        aria2c "${ARIA2_OPTS[@]}" --listen-port="$port" --enable-rpc=true --rpc-listen-all=false \
            --rpc-listen-port=$((port + 1000)) --log="$d/aria2.log" --log-level=notice \
            -d "$work/seed" --check-integrity=true --bt-seed-unverified=false \
            --seed-ratio=0.0 --seed-time=60 -T "$torrent" >"$d/log" 2>&1 &
        SEED_PID=$!
        bench_track "$SEED_PID"
        bench_wait_until 120 aria2_seeding $((port + 1000)) || { cat "$d/log" >&2; return 1; }
        ;;
    tr)
        tr_config "$d" "$port" $((port + 1000)) "$work/seed"
        transmission-daemon -f -g "$d/cfg" -e "$d/log" >"$d/stdout" 2>&1 &
        SEED_PID=$!
        bench_track "$SEED_PID"
        bench_wait_until 20 tr_up $((port + 1000)) || { cat "$d/log" >&2; return 1; }
        transmission-remote "127.0.0.1:$((port + 1000))" -a "$torrent" -w "$work/seed" >/dev/null
        bench_wait_until 120 tr_done $((port + 1000)) || { cat "$d/log" >&2; return 1; }
        ;;
    esac
}

# hooks run by bench_measure after the leecher started
SEED_KIND= SEED_PORT= LEECH_PORT= LEECH_RPC=
after_dial() { # the leecher is listening: start the shoal seeder that dials it
    bench_wait_until 20 listening "$LEECH_PORT" || return 1
    start_seeder "$SEED_KIND" "$SEED_PORT" "$LEECH_PORT"
}
after_tr() { # transmission is up: add the torrent, then start the seeder that dials it
    bench_wait_until 20 tr_up "$LEECH_RPC" || return 1
    transmission-remote "127.0.0.1:$LEECH_RPC" -a "$torrent" -w "$LEECH_OUT" >/dev/null || return 1
    after_dial
}
listening() { ss -Htln "sport = :$1" | grep -q .; }
tr_leech_done() { tr_done "$LEECH_RPC"; }

# run_pair SEEDER LEECHER: sets R_* figures; returns 1 on failure
run_pair() {
    local s=$1 l=$2 name="$1-to-$2" out="$work/out-$1-$2" after=- done=exit
    SEED_KIND=$s SEED_PORT=$(bench_port) LEECH_PORT=$(bench_port)
    # aria2 and transmission also listen on PORT+1000 (RPC): keep them apart
    while ((LEECH_PORT == SEED_PORT || LEECH_PORT - SEED_PORT == 1000 || SEED_PORT - LEECH_PORT == 1000)); do
        LEECH_PORT=$(bench_port)
    done
    LEECH_OUT=$out
    mkdir -p "$out"
    local cmd=()
    case $l in
    shoal) cmd=("$work/shoal" get --peer "127.0.0.1:$SEED_PORT" --listen "127.0.0.1:$LEECH_PORT" --no-dht -o "$out" "$torrent") ;;
    lt) cmd=($BENCH_PY "$pydir/get.py" --no-utp --poll 0.02 --port "$LEECH_PORT" --out "$out" --timeout "$TIMEOUT"
        --peer "127.0.0.1:$SEED_PORT" "$torrent") ;;
    aria2)
        cmd=(aria2c "${ARIA2_OPTS[@]}" --listen-port="$LEECH_PORT" --log="$work/$name.aria2.log" --log-level=notice
            -d "$out" --seed-time=0 --bt-stop-timeout=600 -T "$torrent")
        after=after_dial
        ;;
    tr)
        LEECH_RPC=$((LEECH_PORT + 1000))
        tr_config "$work/tr-$name" "$LEECH_PORT" "$LEECH_RPC" "$out"
        cmd=(transmission-daemon -f -g "$work/tr-$name/cfg" -e "$work/tr-$name/log")
        after=after_tr
        done=tr_leech_done
        ;;
    esac
    if [ "$after" = - ]; then
        start_seeder "$s" "$SEED_PORT" || return 1
    fi
    R_LOAD=$(bench_load)
    bench_measure "$name" "$SEED_PORT" "$LEECH_PORT" "$TIMEOUT" "$done" "$after" -- "${cmd[@]}"
    bench_stop "$SEED_PID"
    if [ "$M_OK" != 1 ]; then
        echo "$name: failed or timed out; last log lines:" >&2
        tail -20 "$work/$name.log" >&2
        return 1
    fi
    if ! cmp -s "$work/seed/bench.bin" "$out/bench.bin"; then
        echo "$name: the copy differs from the original" >&2
        return 1
    fi
    rm -rf "$out"
    R_SECS=$(bench_secs "$M_CONN" "$M_DONE")
    R_MBS=$(bench_rate "$bytes" "$M_CONN" "$M_DONE")
    R_CPU=$M_CPU
    R_MBCPU=$(awk -v n="$bytes" -v c="$M_CPU" 'BEGIN { if (c > 0) printf "%.0f", n / 1e6 / c; else print "-" }')
    R_RSS=$((M_RSS_KIB / 1024))
}

declare -A mbs rss
status=0
echo
echo "MB/s = 10^6 bytes/s from the first TCP connection to verified completion; CPU s = the"
echo "leecher's user+system seconds for its whole life; RSS = its peak (VmHWM); load = 1-min average"
printf '%-14s %8s %8s %8s %10s %9s %5s\n' 'seeder→leecher' seconds 'MB/s' 'CPU s' 'MB/CPU-s' 'peak RSS' load
for p in $PAIRS; do
    s=${p%%:*} l=${p##*:}
    if run_pair "$s" "$l"; then
        mbs[$p]=$R_MBS
        rss[$p]=$R_RSS
        printf '%-14s %8s %8s %8s %10s %5d MiB %5s\n' "$s→$l" "$R_SECS" "$R_MBS" "$R_CPU" "$R_MBCPU" "$R_RSS" "$R_LOAD"
    else
        printf '%-14s %8s\n' "$s→$l" FAILED
        status=1
    fi
done

sha=$("$work/sha1rate" -mbs -seconds 2 -runs 4)
echo
echo "SHA-1 on one core (bench/sha1rate, Go crypto/sha1, 1 MiB pieces, best of 4, per CPU-second): $sha MB/s   load $(bench_load)"
if command -v openssl >/dev/null; then
    osha=$(openssl speed -seconds 2 -bytes 1048576 sha1 2>/dev/null | awk '/^sha1 /{v=$NF; sub(/k$/,"",v); printf "%.1f", v * 1000 / 1e6}')
    [ -n "$osha" ] && echo "SHA-1 on one core (openssl speed sha1, 1 MiB blocks, CPU time):   $osha MB/s"
fi
if [ -n "${mbs[shoal:shoal]:-}" ]; then
    best=0 bestp=
    for p in "${!mbs[@]}"; do
        [ "$p" = shoal:shoal ] && continue
        if awk -v a="${mbs[$p]}" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=${mbs[$p]} bestp=$p; fi
    done
    echo
    echo "targets (shoal→shoal):"
    [ -n "$bestp" ] && awk -v s="${mbs[shoal:shoal]}" -v b="$best" -v p="$bestp" \
        'BEGIN { printf "  %.2fx the fastest other pair (%s, %s MB/s); target >= 1.5x\n", s / b, p, b }'
    awk -v s="${mbs[shoal:shoal]}" -v h="$sha" 'BEGIN { printf "  %.0f%% of one core'"'"'s SHA-1 rate; target >= 40%%\n", 100 * s / h }'
    echo "  leecher peak RSS ${rss[shoal:shoal]} MiB; target <= 64 MiB"
fi
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
