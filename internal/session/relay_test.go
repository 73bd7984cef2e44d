package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/relay"
)

// fakeTracker lists every announcing peer at the address the announce came
// from (ip= is ignored, as opentracker does) and the port it gave, except
// the ports in hide (standing in for a NATed peer's unreachable address).
func fakeTracker(t *testing.T, hide map[string]bool) *httptest.Server {
	var mu sync.Mutex
	peers := map[string]netip.AddrPort{} // by peer id
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		port, _ := strconv.Atoi(q.Get("port"))
		ap := netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port))
		var compact []byte
		mu.Lock()
		if q.Get("event") == "stopped" {
			delete(peers, q.Get("peer_id"))
		} else if !hide[q.Get("port")] {
			peers[q.Get("peer_id")] = ap
		}
		for id, p := range peers {
			if id != q.Get("peer_id") {
				a := p.Addr().As4()
				compact = binary.BigEndian.AppendUint16(append(compact, a[:]...), p.Port())
			}
		}
		mu.Unlock()
		w.Write([]byte("d8:intervali30e5:peers" + strconv.Itoa(len(compact)) + ":" + string(compact) + "e"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRelayedSeeder: a seeder that is reachable only through a relay (the
// tracker never lists its own address) registers with the relay, the relay
// announces its public port, and a leecher that only knows the tracker
// downloads everything through the relay.
func TestRelayedSeeder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := relay.NewServer(relay.Config{Listen: "127.0.0.1:0", PortMin: 31700, PortMax: 31799})
	if err != nil {
		t.Fatal(err)
	}
	relayDone := make(chan struct{})
	go func() { rs.Serve(ctx); close(relayDone) }()
	defer func() { cancel(); <-relayDone }()

	seeder := newTestClient(t)
	go seeder.Run(ctx)
	tr := fakeTracker(t, map[string]bool{strconv.Itoa(int(seeder.Port())): true})

	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 2<<20+777, 32<<10)
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
	t.Logf("seeder listens on %v, reachable through the relay at %v", seeder.Addr(), rc.Addrs())

	leecher := newTestClient(t)
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
	if s := rs.Stats(); s.Spliced == 0 {
		t.Fatalf("relay spliced nothing: %+v", s)
	}
}

func TestRelayTrackerURLs(t *testing.T) {
	got := relayTrackerURLs("http://a/announce", [][]string{
		{"udp://b:1", "http://a/announce"}, {"wss://c/x", "http://d/announce", "http://e/announce", "http://f/announce"},
	})
	want := []string{"udp://b:1", "http://a/announce", "http://d/announce", "http://e/announce"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// waitRelayAddr waits (at most 10 s) until the relay gave rc a public
// address, which it has announced to the tracker by then.
func waitRelayAddr(t *testing.T, rc *relay.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.Addrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no public address from the relay")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
