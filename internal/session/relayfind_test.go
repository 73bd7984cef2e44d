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

// TestFindRelaysFromTorrentTrackers: a relay lists itself at a real tracker;
// a client whose public torrent uses that tracker finds the relay there,
// registers with it, and never asks its private torrent's tracker.
func TestFindRelaysFromTorrentTrackers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := trackerserver.New(trackerserver.NewMemoryStore(), trackerserver.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trDone := make(chan struct{})
	go func() { trackerserver.ServeHTTP(ctx, ln, tr); close(trDone) }()
	defer func() { cancel(); <-trDone }()
	u := "http://" + ln.Addr().String() + "/announce"

	rs, err := relay.NewServer(relay.Config{Listen: "127.0.0.1:0", PortMin: 31800, PortMax: 31819, DirectoryTrackers: []string{u}})
	if err != nil {
		t.Fatal(err)
	}
	relayDone := make(chan struct{})
	go func() { rs.Serve(ctx); close(relayDone) }()
	defer func() { cancel(); <-relayDone }()

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
	var mu sync.Mutex
	var msgs []string
	if err := c.FindRelays(ctx, nil, 1, true, func(m string) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rs.Stats().Peers == 0 {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("the client did not register with the relay; messages %q", msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) == 0 || !strings.HasPrefix(msgs[0], "found relay "+rs.Addr().String()+" via tracker ") {
		t.Fatalf("messages %q", msgs)
	}
}
