package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// TestIndexFindsSeededTorrent: on loopback, three DHT nodes and a seeder that
// announces into them; 'shoal index' samples the DHT, fetches the metadata
// from the seeder and indexes it, and 'shoal search --index' finds it.
func TestIndexFindsSeededTorrent(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newNode := func(bootstrap []string) *dht.Server {
		d, err := dht.New(dht.Config{Listen: "127.0.0.1:0", Bootstrap: bootstrap, AllowLoopback: true, RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		go d.Start(ctx)
		return d
	}
	root := newNode([]string{})
	boot := []string{root.Addr().String()}
	newNode(boot)
	newNode(boot)

	dir := t.TempDir()
	content := filepath.Join(dir, "Cosmic Voyage 2031")
	os.MkdirAll(content, 0o755)
	os.WriteFile(filepath.Join(content, "Ëpisode One.mkv"), bytes.Repeat([]byte("x"), 40000), 0o644)
	mi, _, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: content})
	if err != nil {
		t.Fatal(err)
	}
	seedDHT := newNode(boot)
	seeder, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	seeder.SetDHT(seedDHT)
	done := make(chan struct{})
	sctx, scancel := context.WithCancel(ctx)
	go func() { defer close(done); seeder.Run(sctx) }()
	tor, err := seeder.Add(sctx, mi, session.Options{Root: dir, NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	// stop the torrent (it writes its resume record) before the temp dir goes
	defer func() { scancel(); <-done; tor.Close() }()

	db := filepath.Join(t.TempDir(), "index.db")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"index", "--dht-bootstrap", root.Addr().String(), "--dht-listen", "127.0.0.1:0",
		"--listen", "127.0.0.1:0", "--db", db, "--max", "1", "--rate", "20"})
	ictx, icancel := context.WithTimeout(ctx, 60*time.Second)
	defer icancel()
	if err := cmd.ExecuteContext(ictx); err != nil {
		t.Fatalf("index: %v\n%s", err, out.String())
	}
	s, err := catalog.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Get(ctx, mi.InfoHash)
	s.Close()
	if err != nil {
		t.Fatalf("seeded torrent not indexed: %v\n%s", err, out.String())
	}
	if h.Name != "Cosmic Voyage 2031" || len(h.Files) != 1 || h.Size != 40000 {
		t.Fatalf("indexed entry %+v", h)
	}
	res, err := runOut(t, "search", "--index", db, "episode one")
	if err != nil || !strings.Contains(string(res), mi.InfoHash.String()) {
		t.Fatalf("search: %v\n%s", err, res)
	}
}
