package relay

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/internal/tracker"
	trackerserver "github.com/shoal-p2p/shoal/internal/tracker/server"
)

func TestDirectoryHash(t *testing.T) {
	if got := hex.EncodeToString(DirectoryHash[:]); got != "a508504eac990162d675744e865c6adb6b7a6ed8" {
		t.Fatalf("DirectoryHash = %s: changing it splits relays from peers", got)
	}
}

// startTracker runs shoal's tracker (HTTP, in-memory store) on loopback and
// returns its announce URL.
func startTracker(t *testing.T) string {
	t.Helper()
	tr, err := trackerserver.New(trackerserver.NewMemoryStore(), trackerserver.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { trackerserver.ServeHTTP(ctx, ln, tr); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String() + "/announce"
}

// directoryCounts scrapes DirectoryHash at a tracker.
func directoryCounts(t *testing.T, u string) trackerserverCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := (&tracker.Client{}).Scrape(ctx, u, DirectoryHash)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := res[DirectoryHash]
	if !ok {
		return trackerserverCounts{}
	}
	return trackerserverCounts{r.Seeders, r.Leechers}
}

type trackerserverCounts struct{ seeders, leechers int }

func mainAddr(s *Server) netip.AddrPort {
	return netip.MustParseAddrPort(s.Addr().String())
}

// TestFindViaTracker: a relay lists itself at a real tracker; a lookup there
// finds it (and withdraws its own entry); the relay withdraws on exit.
func TestFindViaTracker(t *testing.T) {
	u := startTracker(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := startRelayCtx(t, ctx, Config{DirectoryTrackers: []string{u}})
	waitFor(t, "the relay listed as a seed", func() bool { return directoryCounts(t, u).seeders == 1 })

	found, err := Lookup(context.Background(), FinderConfig{
		Trackers: func() []string { return []string{u, u, "wss://unsupported.invalid/announce"} },
		Port:     6881, Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{{Addr: mainAddr(s), Via: "tracker " + u}}
	if !slices.Equal(found, want) {
		t.Fatalf("Lookup = %v, want %v", found, want)
	}
	if c := directoryCounts(t, u); c.leechers != 0 {
		t.Fatalf("the lookup stayed listed: %+v", c)
	}
	cancel()
	waitFor(t, "the relay withdrawn", func() bool { return directoryCounts(t, u).seeders == 0 })
}

// startRelayCtx is startRelay with a context the test may end early.
func startRelayCtx(t *testing.T, ctx context.Context, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	base := uint16(portBase.Add(20) - 20)
	cfg.Listen, cfg.PortMin, cfg.PortMax = "127.0.0.1:0", base, base+19
	cfg.Logger = testLogger()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("relay did not stop")
		}
	})
	return s
}

// dhtNetwork starts n DHT nodes on loopback, all bootstrapped from the first.
func dhtNetwork(t *testing.T, n int) []*dht.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nodes []*dht.Server
	for i := range n {
		cfg := dht.Config{Listen: "127.0.0.1:0", Bootstrap: []string{}, AllowLoopback: true, QueryTimeout: 500 * time.Millisecond}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].Addr().String()}
		}
		d, err := dht.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if i > 0 {
			if err := d.Bootstrap(ctx); err != nil {
				t.Fatalf("dht node %d: %v", i, err)
			}
		}
		nodes = append(nodes, d)
	}
	for _, d := range nodes[1:] {
		d.FindNode(ctx, d.ID())
	}
	return nodes
}

func dhtHas(d *dht.Server, ih [20]byte, want netip.AddrPort) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peers, _ := d.GetPeers(ctx, ih)
	return slices.Contains(peers, want)
}

// TestFindViaDHT: a relay with a DHT node lists its main port under
// DirectoryHash; a lookup through another node finds and probes it.
func TestFindViaDHT(t *testing.T) {
	nodes := dhtNetwork(t, 3)
	s := startRelay(t, Config{DHT: nodes[1]})
	waitFor(t, "the relay in the DHT", func() bool { return dhtHas(nodes[2], DirectoryHash, mainAddr(s)) })
	found, err := Lookup(context.Background(), FinderConfig{DHT: nodes[2], Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Found{{Addr: mainAddr(s), Via: "DHT"}}; !slices.Equal(found, want) {
		t.Fatalf("Lookup = %v, want %v", found, want)
	}
}

// TestRelayedPeerInDHT: the torrent of a relayed peer is announced into the
// DHT with the peer's public port on the relay (not the DHT socket's port).
func TestRelayedPeerInDHT(t *testing.T) {
	nodes := dhtNetwork(t, 3)
	s := startRelay(t, Config{DHT: nodes[1]})
	ih, private := [20]byte{0x42, 1}, [20]byte{0x42, 3}
	c := startNATedTorrents(t, s.Addr().String(), []Torrent{{InfoHash: private, Private: true}, {InfoHash: ih}},
		func(nc net.Conn) { nc.Close() })
	pub := publicAddr(t, c)
	waitFor(t, "the relayed peer in the DHT", func() bool { return dhtHas(nodes[2], ih, pub) })
	if dhtHas(nodes[2], ih, nodes[1].Addr()) {
		t.Fatal("announced with implied_port")
	}
	// both torrents' announces start together: the public one is there,
	// so the private one would be too
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if peers, _ := nodes[2].GetPeers(ctx, private); len(peers) != 0 {
		t.Fatalf("a private torrent was announced into the DHT: %v", peers)
	}
}

// TestNoAnnounceKeepsPeersOutOfDHT: with NoAnnounce the relay lists itself
// but not its peers' torrents.
func TestNoAnnounceKeepsPeersOutOfDHT(t *testing.T) {
	nodes := dhtNetwork(t, 3)
	s := startRelay(t, Config{DHT: nodes[1], NoAnnounce: true})
	ih := [20]byte{0x42, 2}
	c := startNATed(t, s.Addr().String(), ih, func(nc net.Conn) { nc.Close() })
	publicAddr(t, c)
	// the relay's own listing comes from the same loop kind: once it is
	// there, a peer announce would have had its chance too
	waitFor(t, "the relay in the DHT", func() bool { return dhtHas(nodes[2], DirectoryHash, mainAddr(s)) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if peers, _ := nodes[2].GetPeers(ctx, ih); len(peers) != 0 {
		t.Fatalf("torrent announced despite NoAnnounce: %v", peers)
	}
}

// compactTracker serves announces listing peers (compact form) and counts
// requests by event.
func compactTracker(t *testing.T, peers func() []netip.AddrPort) (string, *sync.Map) {
	t.Helper()
	events := &sync.Map{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev := r.URL.Query().Get("event")
		n, _ := events.LoadOrStore(ev, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		var b []byte
		for _, p := range peers() {
			b = append(b, p.Addr().AsSlice()...)
			b = append(b, byte(p.Port()>>8), byte(p.Port()))
		}
		fmt.Fprintf(w, "d8:intervali1800e5:peers%d:%se", len(b), b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/announce", events
}

func manyPeers(first byte, n int) []netip.AddrPort {
	var out []netip.AddrPort
	for i := range n {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, first, byte(i >> 8), byte(i)}), 7000))
	}
	return out
}

type stubDHT struct {
	peers []netip.AddrPort
	block bool // GetPeers waits for ctx
}

func (d *stubDHT) GetPeers(ctx context.Context, _ [20]byte) ([]netip.AddrPort, error) {
	if d.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return d.peers, nil
}

func (d *stubDHT) Announce(context.Context, [20]byte, int, bool) ([]netip.AddrPort, error) {
	return nil, nil
}

// TestLookupCaps: no more than MaxFoundPerResponse addresses are taken from
// one tracker answer or one DHT lookup, excluded relays are skipped, and at
// most Max relays are returned.
func TestLookupCaps(t *testing.T) {
	u, _ := compactTracker(t, func() []netip.AddrPort { return manyPeers(1, 200) })
	excluded := manyPeers(1, 1)[0]
	tests := []struct {
		name       string
		trackers   []string
		dht        DHT
		max        int
		probeOK    bool
		wantProbes int
		wantFound  int
	}{
		{"tracker, all fail", []string{u}, nil, 3, false, MaxFoundPerResponse - 1, 0},
		{"dht, all fail", nil, &stubDHT{peers: manyPeers(2, 500)}, 3, false, MaxFoundPerResponse, 0},
		{"both, all fail", []string{u}, &stubDHT{peers: manyPeers(2, 500)}, 3, false, 2*MaxFoundPerResponse - 1, 0},
		{"both, all answer", []string{u}, &stubDHT{peers: manyPeers(2, 500)}, 3, true, -1, 3},
		{"max 1", []string{u}, nil, 1, true, -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			probed := map[netip.AddrPort]int{}
			found, err := Lookup(context.Background(), FinderConfig{
				Trackers: func() []string { return tt.trackers }, DHT: tt.dht, Max: tt.max,
				Port: 6881, Exclude: []string{excluded.String()}, Logger: testLogger(),
				probe: func(_ context.Context, a netip.AddrPort) error {
					mu.Lock()
					probed[a]++
					mu.Unlock()
					if tt.probeOK {
						return nil
					}
					return fmt.Errorf("not a relay")
				},
			})
			if len(found) != tt.wantFound {
				t.Fatalf("found %d relays %v (err %v), want %d", len(found), found, err, tt.wantFound)
			}
			if (err != nil) != (tt.wantFound == 0) {
				t.Fatalf("err = %v with %d found", err, len(found))
			}
			if tt.wantFound == 0 && !strings.Contains(err.Error(), "no relay found") {
				t.Fatalf("err = %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if probed[excluded] != 0 {
				t.Fatal("an excluded relay was probed")
			}
			for a, n := range probed {
				if n != 1 {
					t.Fatalf("%v probed %d times", a, n)
				}
			}
			if tt.wantProbes >= 0 && len(probed) != tt.wantProbes {
				t.Fatalf("%d addresses probed, want %d", len(probed), tt.wantProbes)
			}
			for _, f := range found {
				if probed[f.Addr] != 1 {
					t.Fatalf("found %v without probing it", f.Addr)
				}
			}
		})
	}
}

// TestLookupTimesOut: a tracker and a DHT that never answer end in an error
// once the lookup's timeout passes, and the lookup leaves nothing running.
func TestLookupTimesOut(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	done := make(chan struct{})
	var err error
	var found []Found
	go func() {
		defer close(done)
		found, err = Lookup(context.Background(), FinderConfig{
			Trackers: func() []string { return []string{hang.URL + "/announce"} },
			DHT:      &stubDHT{block: true}, Port: 6881, Timeout: 300 * time.Millisecond,
		})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Lookup did not return")
	}
	if err == nil || len(found) != 0 || !strings.Contains(err.Error(), "and the DHT") {
		t.Fatalf("Lookup = %v, %v", found, err)
	}
}

func TestLookupNoSources(t *testing.T) {
	_, err := Lookup(context.Background(), FinderConfig{Trackers: func() []string { return []string{"wss://x/announce"} }})
	if err != errNoSources {
		t.Fatalf("err = %v, want errNoSources", err)
	}
}

// TestProbeTellsRelaysApart: a relay answers the probe; a listener that
// speaks something else, or nothing, does not.
func TestProbeTellsRelaysApart(t *testing.T) {
	s := startRelay(t, Config{})
	ctx := context.Background()
	if err := Probe(ctx, mainAddr(s)); err != nil {
		t.Fatalf("relay: %v", err)
	}
	if st := s.Stats(); st.Peers != 0 {
		t.Fatalf("a probe registered a peer: %+v", st)
	}
	ln := listenLoop(t, func(c net.Conn) {
		c.Write(handshake([20]byte{})) // a BitTorrent peer's answer
		c.Close()
	})
	if err := Probe(ctx, netip.MustParseAddrPort(ln.Addr().String())); err == nil {
		t.Fatal("a BitTorrent listener passed the probe")
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	if err := Probe(ctx, addr); err == nil {
		t.Fatal("a closed port passed the probe")
	}
}

// TestLookupSkipsNonRelays: of a tracker's list, only the address that is a
// relay is found.
func TestLookupSkipsNonRelays(t *testing.T) {
	s := startRelay(t, Config{})
	ln := listenLoop(t, nil)
	other := netip.MustParseAddrPort(ln.Addr().String())
	u, _ := compactTracker(t, func() []netip.AddrPort { return []netip.AddrPort{other, mainAddr(s)} })
	found, err := Lookup(context.Background(), FinderConfig{Trackers: func() []string { return []string{u} }, Port: 6881})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Addr != mainAddr(s) {
		t.Fatalf("found %v, want only %v", found, mainAddr(s))
	}
}

// TestFindRelaysLooksAgain: the first lookup finds nothing and says so; a
// later one finds the relay, hands it to use once, and the loop ends.
func TestFindRelaysLooksAgain(t *testing.T) {
	s := startRelay(t, Config{})
	var listed atomic.Bool
	u, events := compactTracker(t, func() []netip.AddrPort {
		if listed.Load() {
			return []netip.AddrPort{mainAddr(s)}
		}
		return nil
	})
	var mu sync.Mutex
	var msgs []string
	notify := func(m string) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
		if strings.Contains(m, "looking again") {
			listed.Store(true)
		}
	}
	var used [][]Found
	done := make(chan struct{})
	go func() {
		defer close(done)
		FindRelays(context.Background(), FinderConfig{
			Trackers: func() []string { return []string{u} }, Port: 6881, Max: 1,
			Interval: 10 * time.Millisecond, Notify: notify,
		}, func(f []Found) { used = append(used, f) })
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("FindRelays did not end after finding the relay")
	}
	if len(used) != 1 || len(used[0]) != 1 || used[0][0].Addr != mainAddr(s) {
		t.Fatalf("used %v", used)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) < 2 || !strings.HasPrefix(msgs[0], "relay lookup: no relay found in 1 tracker(s)") ||
		msgs[len(msgs)-1] != fmt.Sprintf("found relay %s via tracker %s", mainAddr(s), u) {
		t.Fatalf("messages %q", msgs)
	}
	for _, ev := range []string{"started", "stopped"} {
		n, ok := events.Load(ev)
		if !ok || n.(*atomic.Int32).Load() < 2 {
			t.Fatalf("%s announces: %v", ev, n)
		}
	}
}

// TestClientGivesUpOnDeadRelay: a client with GiveUpAfter registers, the
// relay goes away, and after failing to reconnect for GiveUpAfter the
// client drops it, says which one, and its Run ends. Without GiveUpAfter
// (a relay given by hand) it keeps trying.
func TestClientGivesUpOnDeadRelay(t *testing.T) {
	ctx, stopRelay := context.WithCancel(context.Background())
	s := startRelayCtx(t, ctx, Config{})
	addr := s.Addr().String()
	gaveUp := make(chan string, 1)
	mk := func(giveUp time.Duration) *Client {
		c, err := NewClient(ClientConfig{
			Relays: []string{addr}, BehindNAT: true, Logger: testLogger(),
			Torrents: func() []Torrent { return nil }, OnConn: func(nc net.Conn) { nc.Close() },
			GiveUpAfter: giveUp, OnGiveUp: func(r string) { gaveUp <- r },
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	found, manual := mk(300*time.Millisecond), mk(0)
	runCtx, stopClients := context.WithCancel(context.Background())
	defer stopClients()
	foundDone, manualDone := make(chan struct{}), make(chan struct{})
	go func() { found.Run(runCtx); close(foundDone) }()
	go func() { manual.Run(runCtx); close(manualDone) }()
	publicAddr(t, found)
	publicAddr(t, manual)
	// a working relay outlives GiveUpAfter many times over
	time.Sleep(time.Second)
	select {
	case r := <-gaveUp:
		t.Fatalf("gave up on %s while it worked", r)
	default:
	}
	stopRelay()
	select {
	case r := <-gaveUp:
		if r != addr {
			t.Fatalf("gave up on %q, want %q", r, addr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not give up on the dead relay")
	}
	select {
	case <-foundDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end after its only relay was dropped")
	}
	if len(found.Addrs()) != 0 {
		t.Fatalf("dropped relay still listed: %v", found.Addrs())
	}
	select {
	case <-manualDone:
		t.Fatal("the client without GiveUpAfter stopped trying")
	case <-time.After(1500 * time.Millisecond):
	}
	stopClients()
	select {
	case <-manualDone:
	case <-time.After(10 * time.Second):
		t.Fatal("relay client did not stop")
	}
}

// TestFindRelaysReplacesLost: FindRelays with Lost hands out one relay,
// and when that one is reported lost (and is gone) it looks again, skips
// the dead one and hands out the other.
func TestFindRelaysReplacesLost(t *testing.T) {
	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	s1, s2 := startRelayCtx(t, ctx1, Config{}), startRelayCtx(t, ctx2, Config{})
	u, _ := compactTracker(t, func() []netip.AddrPort { return []netip.AddrPort{mainAddr(s1), mainAddr(s2)} })
	var mu sync.Mutex
	var msgs []string
	used := make(chan []Found, 4)
	lost := make(chan string)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		FindRelays(ctx, FinderConfig{
			Trackers: func() []string { return []string{u} }, Port: 6881, Max: 1,
			Interval: 10 * time.Millisecond, Lost: lost, Logger: testLogger(),
			Notify: func(m string) { mu.Lock(); msgs = append(msgs, m); mu.Unlock() },
		}, func(f []Found) { used <- f })
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("FindRelays did not end with its context")
		}
	}()
	next := func() Found {
		t.Helper()
		select {
		case f := <-used:
			if len(f) != 1 {
				t.Fatalf("used %v, want one relay", f)
			}
			return f[0]
		case <-time.After(20 * time.Second):
			t.Fatal("no relay handed out")
		}
		return Found{}
	}
	first := next()
	stopFirst, alive := stop1, s2
	if first.Addr == mainAddr(s2) {
		stopFirst, alive = stop2, s1
	}
	stopFirst()
	waitFor(t, "the first relay to stop", func() bool { return Probe(context.Background(), first.Addr) != nil })
	select {
	case lost <- first.Addr.String():
	case <-time.After(10 * time.Second):
		t.Fatal("FindRelays did not take the lost relay")
	}
	second := next()
	if second.Addr != mainAddr(alive) {
		t.Fatalf("replacement %v, want %v", second.Addr, mainAddr(alive))
	}
	select {
	case f := <-used:
		t.Fatalf("a third relay handed out: %v", f)
	case <-time.After(300 * time.Millisecond):
	}
	mu.Lock()
	defer mu.Unlock()
	want := fmt.Sprintf("relay %s stopped working; looking for another", first.Addr)
	if !slices.Contains(msgs, want) {
		t.Fatalf("messages %q, want %q", msgs, want)
	}
}
