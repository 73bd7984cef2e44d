#!/usr/bin/env bash
# fuzz-long.sh — run every fuzz target in the module for longer than the
# quick CI pass, one after another, and report which ones failed.
#
#   scripts/fuzz-long.sh               # every target, 5 minutes each
#   FUZZTIME=30s scripts/fuzz-long.sh  # shorter
#   scripts/fuzz-long.sh wire dht      # only packages whose path contains a word
#
# Targets are discovered from the source (func FuzzXxx in *_test.go), so a new
# target is picked up without editing this file. A failing input is written by
# `go test` to the package's testdata/fuzz/<Target>/ directory; check it in as a
# regression seed once the bug is fixed. FUZZPARALLEL sets -parallel (default 1:
# the machine is shared).
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go
FUZZTIME=${FUZZTIME:-5m}
PAR=${FUZZPARALLEL:-1}

targets=$(grep -rlE '^func Fuzz[A-Za-z0-9_]*\(' --include='*_test.go' internal cmd 2>/dev/null |
	while read -r f; do
		pkg=./$(dirname "$f")
		grep -oE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$pkg |"
	done | sort -u)

if [ $# -gt 0 ]; then
	filtered=""
	while read -r pkg name; do
		for w in "$@"; do
			case "$pkg" in *"$w"*) filtered+="$pkg $name"$'\n' ;; esac
		done
	done <<<"$targets"
	targets=$(printf '%s' "$filtered" | sort -u)
fi

[ -n "$targets" ] || { echo "fuzz-long: no fuzz targets found" >&2; exit 2; }
n=$(printf '%s\n' "$targets" | grep -c .)
echo "fuzz-long: $n targets, $FUZZTIME each"

failed=()
while read -r pkg name; do
	[ -n "$pkg" ] || continue
	echo "=== $pkg $name"
	log=$(mktemp)
	if "$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$PAR" >"$log" 2>&1; then
		tail -n 2 "$log"
	else
		tail -n 40 "$log"
		failed+=("$pkg $name")
	fi
	rm -f "$log"
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz-long: ${#failed[@]} of $n targets FAILED:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz-long: all $n targets passed"
