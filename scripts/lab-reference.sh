#!/bin/sh
# lab-reference.sh — the reference measurements of `shoal lab` (needs root):
# N=4 and N=8, shoal and python3-libtorrent, F = 64 MiB, u = 16 Mbit/s,
# u_s = 4u, d = 10u, 256 KiB pieces, MTU 1500. Runs one after the other
# (they share the CPU). Results: $OUT/n<N>-<clients>.json and one
# `n=N seconds=S d_p2p=B ratio=R clients=K` line per run on stdout.
#   OUT=/tmp/lab-ref NS="4 8" CLIENTS="shoal libtorrent" scripts/lab-reference.sh
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/lab-ref}
NS=${NS:-"4 8"}
CLIENTS=${CLIENTS:-"shoal libtorrent"}
mkdir -p "$OUT"
go build -o "$OUT/shoal" ./cmd/shoal
"$OUT/shoal" lab cleanup >/dev/null 2>&1 || true
for n in $NS; do
	for c in $CLIENTS; do
		line=$("$OUT/shoal" lab --n "$n" --clients "$c" --json "$OUT/n$n-$c.json" 2>"$OUT/n$n-$c.log")
		echo "$line clients=$c"
	done
done
