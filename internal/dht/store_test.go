package dht

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestTokensRotate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var tk tokens
	ip := netip.MustParseAddr("1.2.3.4")
	tok := tk.issue(ip, t0, rng)
	if !tk.valid(tok, ip, t0.Add(TokenRotate-time.Second), rng) {
		t.Fatal("fresh token refused")
	}
	if !tk.valid(tok, ip, t0.Add(TokenRotate+time.Minute), rng) {
		t.Fatal("token from the previous period refused")
	}
	if tk.valid(tok, netip.MustParseAddr("1.2.3.5"), t0, rng) {
		t.Fatal("token accepted from another IP")
	}
	if tk.valid(tok, ip, t0.Add(2*TokenRotate+time.Minute), rng) {
		t.Fatal("token accepted after two rotations")
	}
}

func TestRateLimiter(t *testing.T) {
	rl := newRateLimiter(2, 4, 2)
	a, b, c := netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2.2.2.2"), netip.MustParseAddr("3.3.3.3")
	n := 0
	for i := 0; i < 10; i++ {
		if rl.allow(a, t0) {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("burst allowed %d, want 4", n)
	}
	if !rl.allow(a, t0.Add(500*time.Millisecond)) || rl.allow(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("refill of 2/s wrong")
	}
	rl.allow(b, t0)
	if rl.allow(c, t0) {
		t.Fatal("more IPs tracked than the bound while all are busy")
	}
	if !rl.allow(c, t0.Add(time.Minute)) {
		t.Fatal("idle IPs were not forgotten")
	}
}

func TestPeerStoreBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var ps peerStore
	ih := ID{1}
	for i := 0; i < maxPeersPerHash+50; i++ {
		ps.add(ih, addrN(i), t0)
	}
	if got := len(ps.get(ih, false, 1<<30, t0, rng)); got != maxPeersPerHash {
		t.Fatalf("stored %d peers, cap %d", got, maxPeersPerHash)
	}
	if got := ps.get(ih, false, 10, t0, rng); len(got) != 10 {
		t.Fatalf("get max ignored: %d", len(got))
	}
	ps.expire(t0.Add(PeerTTL + time.Second))
	if len(ps.m) != 0 {
		t.Fatal("expired peers kept")
	}
}
