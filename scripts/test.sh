#!/usr/bin/env bash
# The test command (README): unit tests, short fuzz runs and the interop tests
# against real clients. Traffic stays on loopback: after everything is
# compiled, the tests run inside a fresh network namespace that holds only
# `lo` when we are root (unshare -n), so nothing can reach another address.
set -euo pipefail
cd "$(dirname "$0")/.."

timeout 600 go mod download
timeout 900 go vet ./...
timeout 900 go test -count=1 -run '^$' ./... >/dev/null   # compile every test binary first (needs the module cache only)

run() {
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && [ "${SHOAL_NO_NETNS:-0}" != 1 ]; then
        unshare -n bash -c 'ip link set lo up && "$@"' bash "$@"
    else
        "$@"
    fi
}

echo "== unit, integration and interop tests"
run timeout 1500 go test -count=1 -timeout 1400s ./...

echo "== short fuzz runs"
# count_files DIR: how many files DIR holds (0 when it does not exist)
count_files() { if [ -d "$1" ]; then find "$1" -maxdepth 1 -type f | wc -l; else echo 0; fi; }
for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u); do
    for f in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | awk '{print $2}'); do
        corpus="$target/testdata/fuzz/$f"
        before=$(count_files "$corpus")
        if ! out=$(run timeout 300 go test -count=1 -run '^$' -fuzz "^$f\$" -fuzztime 5s -fuzzminimizetime 10x "./$target" 2>&1) &&
            ! { echo "$out" | grep -q 'context deadline exceeded' &&
                [ "$(count_files "$corpus")" = "$before" ] &&
                echo "fuzz $target $f: 'context deadline exceeded' without a crashing input (Go's fuzz coordinator race at the -fuzztime deadline, golang/go#75804); running again with a count budget" &&
                out=$(run timeout 300 go test -count=1 -run '^$' -fuzz "^$f\$" -fuzztime 20000x -fuzzminimizetime 10x "./$target" 2>&1); }; then
            echo "$out" | tail -40
            echo "fuzz $target $f FAILED (a crashing input, if any, is saved under $target/testdata/fuzz/$f)"
            exit 1
        fi
        echo "fuzz $target $f ok"
    done
done
