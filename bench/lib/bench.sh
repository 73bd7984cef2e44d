# shellcheck shell=bash
# Shared helpers for scripts/bench-core.sh, bench-transfer.sh and bench-many.sh.
# Source it after `set -euo pipefail`. Everything runs on 127.0.0.1; every
# process started is recorded in BENCH_PIDS and ended by PID on exit; every
# wait is bounded.
#
# Timing: bench_measure runs a leecher under /usr/bin/time (user+system CPU
# seconds and max RSS, which is the kernel's VmHWM of the leecher process)
# and records three wall-clock instants (bash $EPOCHREALTIME, no forks):
#   T_START  the leecher process is started
#   T_CONN   the first ESTABLISHED TCP connection between the seeder's and
#            leecher's listen ports is seen (ss polled every 10 ms until then;
#            either side may have dialled)
#   T_DONE   the leecher reported verified completion (it exited 0, or for a
#            daemon leecher its RPC reported 100 %)
# MB/s is computed from T_CONN to T_DONE, so process start-up (python import,
# libtorrent session, Go runtime) is not counted for anyone.

BENCH_PY=/usr/bin/python3
BENCH_PIDS=()

# bench_workdir SIZE_MIB COPIES: a scratch dir on /dev/shm when it holds
# SIZE_MIB*COPIES plus slack, else under $TMPDIR or /tmp. Prints the path.
bench_workdir() {
    local size=$1 copies=$2 base=${BENCH_DIR:-} avail_kib
    if [ -z "$base" ]; then
        avail_kib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2{print $4}')
        if [ -n "$avail_kib" ] && [ "$avail_kib" -gt $((size * 1024 * (copies + 1))) ]; then
            base=/dev/shm
        else
            base=${TMPDIR:-/tmp}
        fi
    fi
    mktemp -d "$base/shoal-bench-XXXXXX"
}

bench_track() { BENCH_PIDS+=("$1"); }

# bench_stop PID: SIGTERM, up to 8 s, then SIGKILL. Only PIDs we started
# (and, for /usr/bin/time wrappers, their direct child).
bench_stop() {
    local pid=$1 i child
    child=$(_bench_child "$pid")
    [ -n "$child" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = time ] && kill "$child" 2>/dev/null
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_stop_all() {
    local p
    for p in "${BENCH_PIDS[@]}"; do bench_stop "$p"; done
    BENCH_PIDS=()
}

# bench_port: a free TCP port in 20000-31999 (below the ephemeral range).
bench_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            ! ss -Htuln "sport = :$p" 2>/dev/null | grep -q . &&
            ! ss -Htuln "sport = :$((p + 1000))" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    echo "bench: no free port" >&2
    return 1
}

# bench_wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
bench_wait_until() {
    local secs=$1 end
    shift
    end=$((SECONDS + secs))
    until "$@" 2>/dev/null; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

bench_load() { awk '{print $1}' /proc/loadavg; }

# _bench_conn_watch OUTFILE PID PORT_A PORT_B: writes $EPOCHREALTIME to
# OUTFILE when the first established connection to either port appears.
# Gives up when PID is gone or after 120 s.
_bench_conn_watch() {
    local out=$1 pid=$2 a=$3 b=$4 end=$((SECONDS + 120))
    while ((SECONDS < end)) && kill -0 "$pid" 2>/dev/null; do
        if ss -Htn state established "( dport = :$a or dport = :$b )" 2>/dev/null | grep -q .; then
            echo "$EPOCHREALTIME" >"$out"
            return 0
        fi
        sleep 0.01
    done
}

# _bench_child PID: the process /usr/bin/time (PID) runs.
# Always succeeds (ps fails when there is none): safe under set -e/pipefail.
_bench_child() { ps -o pid= --ppid "$1" 2>/dev/null | awk 'NR==1{print $1}' || true; }

# _bench_stop_timed PID: stop the command that /usr/bin/time (PID) runs, so
# that time itself writes its report (time dies on SIGTERM without one).
_bench_stop_timed() {
    local pid=$1 child i
    child=$(_bench_child "$pid")
    [ -n "$child" ] && kill "$child" 2>/dev/null
    for ((i = 0; i < 80; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    child=$(_bench_child "$pid")
    [ -n "$child" ] && kill -9 "$child" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# _bench_watchdog PID SECONDS: stop the timed command if it runs too long.
_bench_watchdog() {
    local pid=$1 end=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= end)); then
            echo "bench: timeout after $2 s" >&2
            _bench_stop_timed "$pid"
            return 0
        fi
        sleep 0.1
    done
}

# bench_cpu_rss TIMEFILE: "CPU_SECONDS MAXRSS_KIB" from /usr/bin/time -f '%U %S %M'.
bench_cpu_rss() {
    awk 'NF >= 3 && $1 ~ /^[0-9.]+$/ { printf "%.2f %d\n", $1 + $2, $3 }' "$1" | tail -1
}

# bench_measure NAME SEEDPORT LEECHPORT TIMEOUT DONE_CMD AFTER -- LEECHER CMD...
# Starts the leecher under /usr/bin/time, then runs AFTER (a command, or "-"
# for none: e.g. start a seeder that dials the leecher), and waits until the
# leecher exits (DONE_CMD "exit": it must exit 0 when the download is
# complete and verified) or, for a daemon, until DONE_CMD succeeds (polled
# every 0.1 s), then stops it.
# Sets M_START M_CONN M_DONE M_CPU M_RSS_KIB M_OK (1 or 0). Logs in $BENCH_WORK/NAME.*
bench_measure() {
    local name=$1 sport=$2 lport=$3 timeout=$4 donecmd=$5 after=$6 tf pid watch dog rc=0
    shift 7   # the 6 arguments and "--"
    tf="$BENCH_WORK/$name.time"
    rm -f "$BENCH_WORK/$name.conn" "$tf"
    M_OK=0 M_CPU=0 M_RSS_KIB=0 M_CONN=
    M_START=$EPOCHREALTIME
    /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$BENCH_WORK/$name.log" 2>&1 &
    pid=$!
    bench_track "$pid"
    _bench_conn_watch "$BENCH_WORK/$name.conn" "$pid" "$sport" "$lport" &
    watch=$!
    if [ "$after" != - ] && ! $after; then
        echo "bench: $after failed" >&2
        rc=1
    fi
    if [ "$rc" != 0 ]; then
        M_DONE=$EPOCHREALTIME
        _bench_stop_timed "$pid"
    elif [ "$donecmd" = exit ]; then
        _bench_watchdog "$pid" "$timeout" &
        dog=$!
        wait "$pid" || rc=$?
        M_DONE=$EPOCHREALTIME
        wait "$dog" 2>/dev/null || true
    else
        if bench_wait_until "$timeout" $donecmd; then M_DONE=$EPOCHREALTIME; else rc=1; M_DONE=$EPOCHREALTIME; fi
        _bench_stop_timed "$pid"
    fi
    kill "$watch" 2>/dev/null || true
    wait "$watch" 2>/dev/null || true
    [ -f "$BENCH_WORK/$name.conn" ] && M_CONN=$(cat "$BENCH_WORK/$name.conn")
    [ -n "$M_CONN" ] || M_CONN=$M_START
    if [ -f "$tf" ]; then read -r M_CPU M_RSS_KIB < <(bench_cpu_rss "$tf") || true; fi
    [ "$rc" = 0 ] && M_OK=1
    return 0
}

# bench_rate BYTES FROM TO: MB/s (10^6 bytes) with one decimal.
bench_rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { if (b > a) printf "%.1f", n / 1e6 / (b - a); else print "inf" }'; }
bench_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
