package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// TestSearchFlood: `shoal search --flood` joins a swarm through --via and
// --peer and finds a torrent that a peer two hops away holds.
func TestSearchFlood(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mk := func(dir, name string, size int) (*metainfo.MetaInfo, string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		mi, raw, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: p, NoDate: true})
		if err != nil {
			t.Fatal(err)
		}
		tf := filepath.Join(t.TempDir(), name+".torrent")
		os.WriteFile(tf, raw, 0o644)
		return mi, tf
	}
	// a swarm torrent nobody has: peers with nothing to trade stay connected
	shared, sharedFile := mk(t.TempDir(), "swarm.bin", 40000)
	var torrents []*session.Torrent
	defer func() {
		cancel()
		for _, tor := range torrents {
			tor.Close()
		}
	}()
	var addrs []string
	for i, name := range []string{"first hop notes.txt", "second hop treasure map.txt"} {
		c, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		go c.Run(ctx)
		var peers []string
		if i > 0 {
			peers = addrs[:1]
		}
		tor, err := c.Add(ctx, shared, session.Options{Root: t.TempDir(), Peers: peers, NoTrackers: true})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		own, _ := mk(dir, name, 1000)
		ot, err := c.Add(ctx, own, session.Options{Root: dir, NoTrackers: true})
		if err != nil {
			t.Fatal(err)
		}
		torrents = append(torrents, tor, ot)
		addrs = append(addrs, c.Addr().String())
	}
	// the CLI joins at the first client, so the treasure is two hops away
	out, err := runOut(t, "search", "--flood", "--via", sharedFile, "--peer", addrs[0], "--no-trackers",
		"--listen", "127.0.0.1:0", "--ttl", "3", "--wait", "3s", "--json", "treasure")
	if err != nil {
		t.Fatalf("search --flood: %v\n%s", err, out)
	}
	var res struct {
		Results []struct{ Name string } `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(res.Results) != 1 || res.Results[0].Name != "second hop treasure map.txt" {
		t.Fatalf("want the treasure two hops away, got %+v", res.Results)
	}
}
