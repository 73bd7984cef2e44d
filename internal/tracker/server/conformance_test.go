package server

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// runStoreConformance is the one behaviour suite every Store passes
// (chihaya's storage_tests.go style). newStore returns a fresh, empty store;
// the suite closes it.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"FirstPeerGetsNoOne", confFirstPeer},
		{"PeersSeeEachOther", confPeersSeeEachOther},
		{"SeederGetsOnlyLeechers", confSeederGetsLeechers},
		{"ReannounceDoesNotDoubleCount", confReannounce},
		{"CompletedCountsAndPromotes", confCompleted},
		{"StoppedRemoves", confStopped},
		{"PeersExpire", confExpiry},
		{"FamiliesKeptApart", confFamilies},
		{"NumWantHonoured", confNumWant},
		{"ScrapeOrderAndUnknown", confScrape},
		{"Stats", confStats},
		{"Concurrent", confConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			defer s.Close()
			c.fn(t, s)
		})
	}
}

var (
	confNow = time.Unix(1_900_000_000, 0) // fixed "now"; every store takes time from the caller
	ihA     = InfoHash{0xaa, 1}
	ihB     = InfoHash{0xbb, 2}
)

func testPeer4(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(6000+i))
}

func testPeer6(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("fd00::%x", i+1)), uint16(7000+i))
}

func ann(t *testing.T, s Store, ih InfoHash, a netip.AddrPort, seeder bool, ev Event, want int, now time.Time) (SwarmStats, []netip.AddrPort) {
	t.Helper()
	pa := PeerAnnounce{InfoHash: ih, Addr: a, Seeder: seeder, Event: ev, TTL: time.Hour, NumWant: want}
	st, b, err := s.Announce(context.Background(), pa, now, nil)
	if err != nil {
		t.Fatalf("announce %v: %v", a, err)
	}
	step := compactLen(!a.Addr().Is4())
	if len(b)%step != 0 {
		t.Fatalf("peer list of %d bytes is not a multiple of %d", len(b), step)
	}
	var out []netip.AddrPort
	for i := 0; i < len(b); i += step {
		p, _ := addrFromCompact(b[i : i+step])
		out = append(out, p)
	}
	return st, out
}

func wantStats(t *testing.T, got SwarmStats, seeders, leechers, downloaded uint32) {
	t.Helper()
	if got != (SwarmStats{Seeders: seeders, Leechers: leechers, Downloaded: downloaded}) {
		t.Fatalf("stats = %+v, want seeders=%d leechers=%d downloaded=%d", got, seeders, leechers, downloaded)
	}
}

func confFirstPeer(t *testing.T, s Store) {
	st, peers := ann(t, s, ihA, testPeer4(1), false, EventStarted, 50, confNow)
	wantStats(t, st, 0, 1, 0)
	if len(peers) != 0 {
		t.Fatalf("first peer got %v", peers)
	}
}

func confPeersSeeEachOther(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), false, EventStarted, 50, confNow)
	st, peers := ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	wantStats(t, st, 0, 2, 0)
	if len(peers) != 1 || peers[0] != testPeer4(1) {
		t.Fatalf("peer 2 got %v, want [%v]", peers, testPeer4(1))
	}
	_, peers = ann(t, s, ihA, testPeer4(1), false, EventNone, 50, confNow)
	if len(peers) != 1 || peers[0] != testPeer4(2) {
		t.Fatalf("peer 1 got %v, want [%v]", peers, testPeer4(2))
	}
	// Another torrent is another swarm.
	_, peers = ann(t, s, ihB, testPeer4(3), false, EventStarted, 50, confNow)
	if len(peers) != 0 {
		t.Fatalf("other torrent leaked peers %v", peers)
	}
}

func confSeederGetsLeechers(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), true, EventStarted, 50, confNow)
	ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	st, peers := ann(t, s, ihA, testPeer4(3), true, EventStarted, 50, confNow)
	wantStats(t, st, 2, 1, 0)
	if len(peers) != 1 || peers[0] != testPeer4(2) {
		t.Fatalf("seeder got %v, want only the leecher %v", peers, testPeer4(2))
	}
	_, peers = ann(t, s, ihA, testPeer4(4), false, EventStarted, 50, confNow)
	if len(peers) != 3 {
		t.Fatalf("leecher got %v, want all 3 others", peers)
	}
}

func confReannounce(t *testing.T, s Store) {
	for range 3 {
		ann(t, s, ihA, testPeer4(1), false, EventNone, 50, confNow)
	}
	st, _ := ann(t, s, ihA, testPeer4(1), true, EventNone, 50, confNow)
	wantStats(t, st, 1, 0, 0)
}

func confCompleted(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), false, EventStarted, 50, confNow)
	ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	st, _ := ann(t, s, ihA, testPeer4(1), true, EventCompleted, 50, confNow)
	wantStats(t, st, 1, 1, 1)
	st, _ = ann(t, s, ihA, testPeer4(2), true, EventCompleted, 50, confNow)
	wantStats(t, st, 2, 0, 2)
}

func confStopped(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), true, EventStarted, 50, confNow)
	ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	st, peers := ann(t, s, ihA, testPeer4(1), true, EventStopped, 50, confNow)
	wantStats(t, st, 0, 1, 0)
	if len(peers) != 0 {
		t.Fatalf("stopped peer was given peers %v", peers)
	}
	_, peers = ann(t, s, ihA, testPeer4(3), false, EventStarted, 50, confNow)
	if len(peers) != 1 || peers[0] != testPeer4(2) {
		t.Fatalf("after stop got %v, want [%v]", peers, testPeer4(2))
	}
	// Stopping an unknown peer is harmless.
	st, _ = ann(t, s, ihB, testPeer4(9), false, EventStopped, 50, confNow)
	wantStats(t, st, 0, 0, 0)
}

func confExpiry(t *testing.T, s Store) {
	ctx := context.Background()
	ann(t, s, ihA, testPeer4(1), true, EventStarted, 50, confNow)
	ann(t, s, ihB, testPeer4(1), false, EventStarted, 50, confNow)
	later := confNow.Add(30 * time.Minute)
	ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, later)
	// 1h01 after the first announce: peer 1 is gone, peer 2 (announced at +30m) is not.
	end := confNow.Add(time.Hour + time.Minute)
	st, peers := ann(t, s, ihA, testPeer4(3), false, EventStarted, 50, end)
	wantStats(t, st, 0, 2, 0)
	if len(peers) != 1 || peers[0] != testPeer4(2) {
		t.Fatalf("after expiry got %v, want [%v]", peers, testPeer4(2))
	}
	if err := s.Collect(ctx, end); err != nil {
		t.Fatal(err)
	}
	sc, err := s.Scrape(ctx, []InfoHash{ihA, ihB}, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, sc[0], 0, 2, 0)
	wantStats(t, sc[1], 0, 0, 0)
	st2, err := s.Stats(ctx, end)
	if err != nil {
		t.Fatal(err)
	}
	if st2 != (StoreStats{Torrents: 1, Leechers: 2}) {
		t.Fatalf("stats after collect = %+v, want 1 torrent, 2 leechers", st2)
	}
}

func confFamilies(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), false, EventStarted, 50, confNow)
	ann(t, s, ihA, testPeer6(1), false, EventStarted, 50, confNow)
	st, peers := ann(t, s, ihA, testPeer6(2), false, EventStarted, 50, confNow)
	wantStats(t, st, 0, 3, 0)
	if len(peers) != 1 || peers[0] != testPeer6(1) {
		t.Fatalf("IPv6 peer got %v, want [%v]", peers, testPeer6(1))
	}
	_, peers = ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	if len(peers) != 1 || peers[0] != testPeer4(1) {
		t.Fatalf("IPv4 peer got %v, want [%v]", peers, testPeer4(1))
	}
}

func confNumWant(t *testing.T, s Store) {
	for i := range 30 {
		ann(t, s, ihA, testPeer4(i), false, EventStarted, 0, confNow)
	}
	_, peers := ann(t, s, ihA, testPeer4(100), false, EventStarted, 5, confNow)
	if len(peers) != 5 {
		t.Fatalf("numwant 5 gave %d peers", len(peers))
	}
	seen := map[netip.AddrPort]bool{}
	for _, p := range peers {
		if seen[p] || p == testPeer4(100) {
			t.Fatalf("duplicate or self peer %v in %v", p, peers)
		}
		seen[p] = true
	}
	_, peers = ann(t, s, ihA, testPeer4(100), false, EventNone, 0, confNow)
	if len(peers) != 0 {
		t.Fatalf("numwant 0 gave %d peers", len(peers))
	}
	_, peers = ann(t, s, ihA, testPeer4(100), false, EventNone, 100, confNow)
	if len(peers) != 30 {
		t.Fatalf("numwant 100 gave %d peers, want all 30 others", len(peers))
	}
}

func confScrape(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), true, EventCompleted, 50, confNow)
	ann(t, s, ihB, testPeer4(1), false, EventStarted, 50, confNow)
	ann(t, s, ihB, testPeer4(2), false, EventStarted, 50, confNow)
	sc, err := s.Scrape(context.Background(), []InfoHash{ihB, {0xcc}, ihA}, confNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 3 {
		t.Fatalf("scrape gave %d entries, want 3", len(sc))
	}
	wantStats(t, sc[0], 0, 2, 0)
	wantStats(t, sc[1], 0, 0, 0)
	wantStats(t, sc[2], 1, 0, 1)
}

func confStats(t *testing.T, s Store) {
	ann(t, s, ihA, testPeer4(1), true, EventStarted, 50, confNow)
	ann(t, s, ihA, testPeer4(2), false, EventStarted, 50, confNow)
	ann(t, s, ihB, testPeer6(1), false, EventStarted, 50, confNow)
	st, err := s.Stats(context.Background(), confNow)
	if err != nil {
		t.Fatal(err)
	}
	if st != (StoreStats{Torrents: 2, Seeders: 1, Leechers: 2}) {
		t.Fatalf("stats = %+v", st)
	}
}

func confConcurrent(t *testing.T, s Store) {
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pa := PeerAnnounce{InfoHash: InfoHash{byte(i % 3)}, Addr: testPeer4(w*each + i), TTL: time.Hour, NumWant: 10}
				if _, _, err := s.Announce(context.Background(), pa, confNow, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sc, err := s.Scrape(context.Background(), []InfoHash{{0}, {1}, {2}}, confNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, x := range sc {
		total += int(x.Leechers)
	}
	if total != workers*each {
		t.Fatalf("after concurrent announces %d leechers, want %d", total, workers*each)
	}
}

func TestMemoryStoreConformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) Store { return newTestMemoryStore() })
}

// newTestMemoryStore is a MemoryStore whose epoch suits confNow.
func newTestMemoryStore() *MemoryStore {
	s := NewMemoryStore()
	s.epoch = confNow.Add(-time.Hour)
	return s
}
