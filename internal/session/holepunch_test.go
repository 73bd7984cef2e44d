package session

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/relay"
)

func newPunchClient(t *testing.T, rendezvous string) *Client {
	t.Helper()
	return newTestClientWith(t, Config{Listen: "127.0.0.1:0", Rendezvous: rendezvous})
}

// TestHolePunchReplacesRelay: a seeder reachable only through a (slow)
// relay and a leecher that learns the relay's address from the tracker both
// use a rendezvous; the seeder proposes an upgrade, the punch succeeds
// trivially on loopback, the relayed connection is dropped for the direct
// one, and most of the bytes bypass the relay.
func TestHolePunchReplacesRelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const size = 3<<20 + 123
	// a relay slow enough that the whole file through it would take ~12 s
	rs, err := relay.NewServer(relay.Config{Listen: "127.0.0.1:0", PortMin: 31800, PortMax: 31899, PeerRate: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := nat.NewRendezvousServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	relayDone, rvDone := make(chan struct{}), make(chan struct{})
	go func() { rs.Serve(ctx); close(relayDone) }()
	go func() { rv.Serve(ctx); close(rvDone) }()
	defer func() { cancel(); <-relayDone; <-rvDone }()

	// both peers are "NATed": the tracker lists neither's own address
	seeder, leecher := newPunchClient(t, rv.Addr().String()), newPunchClient(t, rv.Addr().String())
	go seeder.Run(ctx)
	tr := fakeTracker(t, map[string]bool{strconv.Itoa(int(seeder.Port())): true, strconv.Itoa(int(leecher.Port())): true})
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, size, 32<<10)
	mi.Announce = tr.URL + "/announce"
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := seeder.UseRelays(ctx, []string{rs.Addr().String()}, true)
	if err != nil {
		t.Fatal(err)
	}
	waitRelayAddr(t, rc)

	go leecher.Run(ctx)
	dir := t.TempDir()
	lt, err := leecher.Add(ctx, mi, Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, lt, st)
	waitDone(t, lt, 60*time.Second)
	got, err := os.ReadFile(filepath.Join(dir, "content.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	ss, ls := seeder.PunchStats(), leecher.PunchStats()
	t.Logf("seeder punch %+v, leecher punch %+v, relay %+v", ss, ls, rs.Stats())
	if ss.Successes == 0 || ls.Successes == 0 || ss.Direct == 0 || ls.Direct == 0 {
		t.Fatalf("no direct connection: seeder %+v, leecher %+v", ss, ls)
	}
	// the relay counts a splice's bytes when it ends: the relayed
	// connection was dropped, so wait for the splice to close
	deadline := time.Now().Add(15 * time.Second)
	for rs.Stats().Conns > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("relay after the splice: %+v", rs.Stats())
	if s := rs.Stats(); s.Spliced == 0 || s.Conns > 0 || s.Bytes >= size/2 {
		t.Fatalf("relay stats %+v: want a splice that carried less than half of %d bytes", s, size)
	}
}

// TestHolePunchFallback: when the punch cannot work (here the rendezvous
// is down), both sides give up cleanly, count a fallback and the download
// completes through the relay.
func TestHolePunchFallback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := relay.NewServer(relay.Config{Listen: "127.0.0.1:0", PortMin: 31900, PortMax: 31999})
	if err != nil {
		t.Fatal(err)
	}
	relayDone := make(chan struct{})
	go func() { rs.Serve(ctx); close(relayDone) }()
	defer func() { cancel(); <-relayDone }()
	// a port nothing listens on
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	seeder, leecher := newPunchClient(t, dead), newPunchClient(t, dead)
	go seeder.Run(ctx)
	tr := fakeTracker(t, map[string]bool{strconv.Itoa(int(seeder.Port())): true, strconv.Itoa(int(leecher.Port())): true})
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 1<<20+5, 32<<10)
	mi.Announce = tr.URL + "/announce"
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := seeder.UseRelays(ctx, []string{rs.Addr().String()}, true)
	if err != nil {
		t.Fatal(err)
	}
	waitRelayAddr(t, rc) // the relay has announced the seeder
	go leecher.Run(ctx)
	dir := t.TempDir()
	lt, err := leecher.Add(ctx, mi, Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, lt, st)
	waitDone(t, lt, 60*time.Second)
	got, err := os.ReadFile(filepath.Join(dir, "content.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (%v)", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for seeder.PunchStats().Fallbacks == 0 || leecher.PunchStats().Fallbacks == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no fallback counted: seeder %+v, leecher %+v", seeder.PunchStats(), leecher.PunchStats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range []PunchStats{seeder.PunchStats(), leecher.PunchStats()} {
		if s.Successes != 0 || s.Direct != 0 || s.Attempts == 0 {
			t.Fatalf("stats %+v", s)
		}
	}
	if s := rs.Stats(); s.Spliced == 0 {
		t.Fatalf("relay spliced nothing: %+v", s)
	}
}

// TestHolePunchDisabled: without a rendezvous a client announces no
// shoal_punch support and counts nothing.
func TestHolePunchDisabled(t *testing.T) {
	c := newTestClient(t)
	defer c.ln.Close()
	if c.punchEnabled() {
		t.Fatal("punching enabled without a rendezvous")
	}
	if s := c.PunchStats(); s != (PunchStats{}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestPuncherBegin(t *testing.T) {
	p := &puncher{relayed: map[netip.AddrPort]bool{}, last: map[[20]byte]time.Time{}, busy: map[[20]byte]bool{}}
	now := time.Unix(1000, 0)
	a, b := [20]byte{1}, [20]byte{2}
	if !p.begin(a, now) {
		t.Fatal("first upgrade refused")
	}
	if p.begin(a, now) {
		t.Fatal("second concurrent upgrade to the same peer allowed")
	}
	p.end(a, true)
	if p.begin(a, now.Add(punchCooldown/2)) {
		t.Fatal("upgrade within the cooldown allowed")
	}
	if !p.begin(a, now.Add(punchCooldown)) {
		t.Fatal("upgrade after the cooldown refused")
	}
	for i := 1; i < maxUpgrades; i++ {
		if !p.begin([20]byte{3, byte(i)}, now) {
			t.Fatalf("upgrade %d refused", i)
		}
	}
	if p.begin(b, now) {
		t.Fatal("more than maxUpgrades at once")
	}
	if p.direct != 1 {
		t.Fatalf("direct %d", p.direct)
	}
}

func TestParsePunchMsg(t *testing.T) {
	good, _ := bencode.Marshal(punchMsg{Rendezvous: "198.18.0.1:7001"})
	long, _ := bencode.Marshal(punchMsg{Rendezvous: string(bytes.Repeat([]byte("a"), 256)) + ":1"})
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"good", good, true},
		{"not bencode", []byte("xyz"), false},
		{"empty dict", []byte("de"), false},
		{"no port", []byte("d1:r9:localhoste"), false},
		{"too long", long, false},
		{"oversized", bytes.Repeat([]byte("d"), maxPunchMsgLen+1), false},
	} {
		m, err := parsePunchMsg(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
		if tc.ok && m.Rendezvous != "198.18.0.1:7001" {
			t.Errorf("%s: got %q", tc.name, m.Rendezvous)
		}
	}
}

func FuzzParsePunchMsg(f *testing.F) {
	f.Add([]byte("d1:r14:127.0.0.1:7001e"))
	f.Fuzz(func(t *testing.T, b []byte) { parsePunchMsg(b) })
}
