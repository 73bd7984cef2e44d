package session

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/relay"
	trackerserver "github.com/shoal-p2p/shoal/internal/tracker/server"
)

// startDirectoryTracker runs shoal's tracker (HTTP, in-memory) on loopback
// until the test ends and returns its announce URL.
func startDirectoryTracker(t *testing.T) string {
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

// startListedRelay runs a relay on loopback (public ports from portMin, 20
// of them) that lists itself at the tracker u. stop ends it and waits; it
// also runs when the test ends.
func startListedRelay(t *testing.T, u string, portMin uint16) (rs *relay.Server, stop func()) {
	t.Helper()
	rs, err := relay.NewServer(relay.Config{Listen: "127.0.0.1:0", PortMin: portMin, PortMax: portMin + 19, DirectoryTrackers: []string{u}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rs.Serve(ctx); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("relay did not stop")
		}
	}
	t.Cleanup(stop)
	return rs, stop
}

// notices collects the one-line messages FindRelays has for the user.
type notices struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notices) add(m string) {
	n.mu.Lock()
	n.msgs = append(n.msgs, m)
	n.mu.Unlock()
}

func (n *notices) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.msgs)
}

// TestFindRelaysFromTorrentTrackers: a relay lists itself at a real tracker;
// a client whose public torrent uses that tracker finds the relay there,
// registers with it, and never asks its private torrent's tracker.
func TestFindRelaysFromTorrentTrackers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := startDirectoryTracker(t)
	rs, _ := startListedRelay(t, u, 31800)

	c := newTestClient(t)
	go c.Run(ctx)
	dir := t.TempDir()
	mi, _ := makeTorrent(t, dir, 100<<10, 32<<10)
	mi.Announce = u
	pub, err := c.Add(ctx, mi, Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	privDir := t.TempDir()
	src := filepath.Join(privDir, "secret.bin")
	if err := os.WriteFile(src, []byte("private data"), 0o644); err != nil {
		t.Fatal(err)
	}
	pmi, _, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: src, Private: true, NoDate: true, Trackers: []string{"http://127.0.0.1:1/private/announce"}})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := c.Add(ctx, pmi, Options{Root: privDir})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, pub, priv)

	if got := c.RelayDirectoryTrackers(); !slices.Equal(got, []string{u}) {
		t.Fatalf("RelayDirectoryTrackers = %q, want only the public torrent's %q", got, u)
	}
	var notes notices
	if err := c.FindRelays(ctx, nil, 1, true, notes.add); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rs.Stats().Peers == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the client did not register with the relay; messages %q", notes.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	msgs := notes.all()
	if len(msgs) == 0 || !strings.HasPrefix(msgs[0], "found relay "+rs.Addr().String()+" via tracker ") {
		t.Fatalf("messages %q", msgs)
	}
}

// TestFoundRelayReplacedWhenItDies: a client finds one of two relays listed
// at its torrent's tracker and registers; that relay dies; after
// RelayGiveUp without it the client says so, finds the other one and
// registers there.
func TestFoundRelayReplacedWhenItDies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	u := startDirectoryTracker(t)
	ra, stopA := startListedRelay(t, u, 31820)
	rb, stopB := startListedRelay(t, u, 31840)

	c := newTestClientWith(t, Config{Listen: "127.0.0.1:0", RelayGiveUp: 500 * time.Millisecond})
	go c.Run(ctx)
	dir := t.TempDir()
	mi, _ := makeTorrent(t, dir, 100<<10, 32<<10)
	mi.Announce = u
	tor, err := c.Add(ctx, mi, Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, tor)
	var notes notices
	if err := c.FindRelays(ctx, nil, 1, true, notes.add); err != nil {
		t.Fatal(err)
	}
	waitRegistered := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s; messages %q", what, notes.all())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRegistered("the client did not register with a relay", func() bool { return ra.Stats().Peers+rb.Stats().Peers > 0 })
	first, other, stopFirst := ra, rb, stopA
	if rb.Stats().Peers > 0 {
		first, other, stopFirst = rb, ra, stopB
	}
	if other.Stats().Peers != 0 {
		t.Fatal("registered with both relays, want one")
	}
	stopFirst()
	waitRegistered("the client did not move to the other relay", func() bool { return other.Stats().Peers == 1 })
	msgs := notes.all()
	want := "relay " + first.Addr().String() + " stopped working; looking for another"
	if !slices.Contains(msgs, want) || !strings.HasPrefix(msgs[len(msgs)-1], "found relay "+other.Addr().String()+" via tracker ") {
		t.Fatalf("messages %q, want %q and then the other relay found", msgs, want)
	}
}
