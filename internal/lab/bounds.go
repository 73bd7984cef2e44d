// Package lab builds a swarm of network namespaces on this machine (a
// server host and N peer hosts on one bridge, addresses in 198.18.0.0/15,
// links shaped with tc tbf), runs a tracker, a seeder and N downloaders in
// them, and measures the time until every peer holds the verified file
// against the textbook lower bounds d_P2P and d_cs.
//
// The pure parts (bounds, flag lists, CSV, result lines) live in bounds.go,
// config.go and result.go; netns.go owns the namespaces and links, proc.go
// the processes, run.go one measurement, sweep.go and plot.go the sweep.
package lab

import (
	"errors"
	"fmt"
	"math"
)

// Bounds are the lower bounds on distribution time of one file to N peers.
type Bounds struct {
	// DP2P is max(F/u_s, F/min d_i, N F/(u_s + Σ u_i)) in seconds.
	DP2P float64
	// DCS is max(N F/u_s, F/min d_i) in seconds.
	DCS float64
	// Upload is DP2P's aggregate upload term N F/(u_s + Σ u_i) in seconds.
	Upload float64
}

// ComputeBounds returns d_P2P and d_cs for a file of fileBytes bytes, a
// server upload of serverMbit, peer uploads peerUpMbit (one entry per peer,
// so N = len(peerUpMbit)) and peer downloads downMbit (one per peer; an
// empty slice or a zero entry means unshaped, i.e. no download term).
// Rates are in Mbit/s (10^6 bit/s), as tc counts them.
func ComputeBounds(fileBytes int64, serverMbit float64, peerUpMbit, downMbit []float64) (Bounds, error) {
	n := len(peerUpMbit)
	if fileBytes <= 0 {
		return Bounds{}, errors.New("bounds: file size must be positive")
	}
	if n == 0 {
		return Bounds{}, errors.New("bounds: need at least one peer")
	}
	if !(serverMbit > 0) || math.IsInf(serverMbit, 0) {
		return Bounds{}, fmt.Errorf("bounds: server upload %v Mbit/s must be positive", serverMbit)
	}
	if len(downMbit) != 0 && len(downMbit) != n {
		return Bounds{}, fmt.Errorf("bounds: %d download rates for %d peers", len(downMbit), n)
	}
	f := float64(fileBytes) * 8 / 1e6 // Mbit
	sum := serverMbit
	for i, u := range peerUpMbit {
		if u < 0 || math.IsNaN(u) || math.IsInf(u, 0) {
			return Bounds{}, fmt.Errorf("bounds: peer %d upload %v Mbit/s is invalid", i+1, u)
		}
		sum += u
	}
	minD := math.Inf(1)
	for i, d := range downMbit {
		if d < 0 || math.IsNaN(d) || math.IsInf(d, 0) {
			return Bounds{}, fmt.Errorf("bounds: peer %d download %v Mbit/s is invalid", i+1, d)
		}
		if d > 0 && d < minD {
			minD = d
		}
	}
	downTerm := 0.0
	if !math.IsInf(minD, 1) {
		downTerm = f / minD
	}
	nf := float64(n) * f
	return Bounds{
		DP2P:   max(f/serverMbit, downTerm, nf/sum),
		DCS:    max(nf/serverMbit, downTerm),
		Upload: nf / sum,
	}, nil
}

// FramingFloor is the smallest achievable T/bound with full-size TCP
// segments at the given MTU: tc counts L2 bytes (MTU + 14-byte Ethernet
// header) while a segment with timestamps carries MTU - 52 payload bytes.
func FramingFloor(mtu int) float64 {
	if mtu <= 52 {
		return math.Inf(1)
	}
	return float64(mtu+14) / float64(mtu-52)
}
