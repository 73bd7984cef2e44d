package dht

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

func newTestServer(t *testing.T, boot []string, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Bootstrap: boot, AllowLoopback: true, QueryTimeout: 500 * time.Millisecond}
	if boot == nil {
		cfg.Bootstrap = []string{}
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startNetwork starts n servers; all bootstrap from the first.
func startNetwork(t *testing.T, ctx context.Context, n int) []*Server {
	t.Helper()
	first := newTestServer(t, nil, nil)
	nodes := []*Server{first}
	for i := 1; i < n; i++ {
		s := newTestServer(t, []string{first.Addr().String()}, nil)
		if err := s.Bootstrap(ctx); err != nil {
			t.Fatalf("node %d bootstrap: %v", i, err)
		}
		nodes = append(nodes, s)
	}
	// a second round lets early nodes learn about later ones
	for _, s := range nodes[1:] {
		s.FindNode(ctx, s.ID())
	}
	return nodes
}

func TestServerAnnounceAndGetPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := startNetwork(t, ctx, 6)
	for i, s := range nodes {
		if s.NumNodes() == 0 {
			t.Fatalf("node %d has an empty table", i)
		}
	}
	ih := [20]byte{0xab, 0xcd}
	if _, err := nodes[3].Announce(ctx, ih, 7777, false); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[4].Announce(ctx, ih, 0, true); err != nil {
		t.Fatal(err)
	}
	peers, err := nodes[5].GetPeers(ctx, ih)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7777"), nodes[4].Addr()}
	for _, w := range want {
		if !slices.Contains(peers, w) {
			t.Fatalf("GetPeers = %v, missing %v", peers, w)
		}
	}
	// BEP 51: some node that stored the announce lists the hash
	found := false
	for _, s := range nodes {
		hs, _, ival, num, err := nodes[5].SampleInfohashes(ctx, s.Addr(), [20]byte{1})
		if err != nil {
			t.Fatal(err)
		}
		if ival <= 0 || num < len(hs) {
			t.Fatalf("interval %v num %d samples %d", ival, num, len(hs))
		}
		if slices.Contains(hs, ih) {
			found = true
		}
	}
	if !found {
		t.Fatal("no node sampled the announced info-hash")
	}
	// a lookup of an unknown hash finds nothing, without error
	if p, err := nodes[2].GetPeers(ctx, [20]byte{9}); err != nil || len(p) != 0 {
		t.Fatalf("unknown hash: %v, %v", p, err)
	}
}

func TestServerRejectsBadToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newTestServer(t, nil, nil)
	b := newTestServer(t, nil, nil)
	_, err := b.query(ctx, a.Addr(), krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: [20]byte{1}, Port: 1, Token: "forged"})
	var ke *krpc.Error
	if !errors.As(err, &ke) || ke.Code != krpc.ErrCodeProtocol {
		t.Fatalf("forged token: %v", err)
	}
	m, err := b.query(ctx, a.Addr(), krpc.MethodGetPeers, &krpc.Args{InfoHash: [20]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.query(ctx, a.Addr(), krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: [20]byte{1}, Port: 1, Token: m.R.Token}); err != nil {
		t.Fatalf("genuine token refused: %v", err)
	}
	// the token is bound to the querier's address: another IP cannot use it
	a.mu.Lock()
	stolen := a.tok.valid(m.R.Token, netip.MustParseAddr("127.0.0.2"), time.Now(), a.rng)
	a.mu.Unlock()
	if stolen {
		t.Fatal("token valid for another IP")
	}
	if _, err := b.query(ctx, a.Addr(), "no_such_method", &krpc.Args{}); !errors.As(err, &ke) || ke.Code != krpc.ErrCodeMethod {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestServerRateLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newTestServer(t, nil, func(c *Config) { c.RateLimit = 1 }) // burst 5
	b := newTestServer(t, nil, func(c *Config) { c.QueryTimeout = 200 * time.Millisecond })
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Ping(ctx, a.Addr()); err == nil {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if answered < 1 || answered > 10 {
		t.Fatalf("answered %d of 30 pings with a limit of 1/s burst 5", answered)
	}
	if a.Stats().RateLimited < 20 {
		t.Fatalf("RateLimited = %d", a.Stats().RateLimited)
	}
}

func TestServerStatePersists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := startNetwork(t, ctx, 4)
	file := filepath.Join(t.TempDir(), "dht.json")
	s := newTestServer(t, []string{nodes[0].Addr().String()}, func(c *Config) { c.StateFile = file })
	if err := s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	id, n := s.ID(), s.NumNodes()
	if n == 0 {
		t.Fatal("no nodes after bootstrap")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// restart with no bootstrap nodes at all: it must rejoin from the file
	s2 := newTestServer(t, []string{}, func(c *Config) { c.StateFile = file })
	if s2.ID() != id {
		t.Fatal("id not kept across restart")
	}
	if err := s2.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if s2.NumNodes() == 0 {
		t.Fatal("did not rejoin from the saved table")
	}
}

func TestServerStartStops(t *testing.T) {
	boot := newTestServer(t, nil, nil)
	s := newTestServer(t, []string{boot.Addr().String()}, func(c *Config) { c.Maintenance = 50 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	deadline := time.After(10 * time.Second)
	for s.NumNodes() == 0 {
		select {
		case <-deadline:
			t.Fatal("no node joined")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
}
