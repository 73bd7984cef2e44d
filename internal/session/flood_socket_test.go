package session

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// TestFloodOverSockets: four clients in a line (A-B-C-D) share one torrent
// over real TCP connections; each also holds a torrent of its own. A flood
// query from A with TTL 3 finds the torrents of B, C and D through the
// chain; with TTL 1 it finds only B's.
func TestFloodOverSockets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	// a torrent none of them has: peers with nothing to trade stay connected
	// (two seeds would drop each other), which keeps the chain standing
	shared, _ := makeTorrent(t, t.TempDir(), 64<<10, 16<<10)
	names := []string{"alpha lighthouse notes", "bravo lighthouse map", "charlie lighthouse photos", "delta lighthouse log"}
	var clients []*Client
	var torrents []*Torrent
	defer func() { stopAll(t, cancel, torrents...) }()
	for i, name := range names {
		c := newTestClient(t)
		go c.Run(ctx)
		clients = append(clients, c)
		var peers []string
		if i > 0 {
			peers = []string{clients[i-1].Addr().String()}
		}
		tor, err := c.Add(ctx, shared, Options{Root: t.TempDir(), Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		torrents = append(torrents, tor)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644)
		mi, _, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: filepath.Join(dir, name), NoDate: true})
		if err != nil {
			t.Fatal(err)
		}
		own, err := c.Add(ctx, mi, Options{Root: dir})
		if err != nil {
			t.Fatal(err)
		}
		torrents = append(torrents, own)
	}
	waitLinks := func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if clients[0].flood.numPeers() >= 1 && clients[1].flood.numPeers() >= 2 && clients[2].flood.numPeers() >= 2 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("chain of flood peers did not form (peers %d %d %d)", clients[0].flood.numPeers(), clients[1].flood.numPeers(), clients[2].flood.numPeers())
	}
	waitLinks()
	found := func(ttl int) map[string]bool {
		rs, st, err := clients[0].FloodSearch(ctx, "lighthouse", ttl, 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range rs {
			got[r.Name] = true
		}
		t.Logf("ttl %d: sent to %d peers, %d replies, found %v", ttl, st.Peers, st.Replies, got)
		return got
	}
	got := found(3)
	for _, n := range names[1:] {
		if !got[n] {
			t.Errorf("ttl 3: %q (held %d hops away) not found", n, 1+indexOf(names, n)-1)
		}
	}
	if got[names[0]] {
		t.Errorf("our own torrent came back as a remote result")
	}
	got = found(1)
	if !got[names[1]] || got[names[2]] || got[names[3]] {
		t.Errorf("ttl 1 should reach only the neighbour: %v", got)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
