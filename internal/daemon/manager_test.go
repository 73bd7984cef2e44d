package daemon

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// makeTorrent writes size random bytes to dir/name and returns the .torrent bytes.
func makeTorrent(t *testing.T, dir, name string, size int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, raw, err := metainfo.Create(context.Background(), metainfo.CreateOptions{Path: p, PieceLength: 32 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// seeder runs a session seeding torrent from dir on loopback and returns its address.
func seeder(t *testing.T, ctx context.Context, dir string, raw []byte) string {
	t.Helper()
	c, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	tor, err := c.Add(ctx, mi, session.Options{Root: dir, NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tor.Close)
	go c.Run(ctx)
	return c.Addr().String()
}

func newManager(t *testing.T, ctx context.Context, data string) (*Manager, context.CancelFunc, chan struct{}) {
	t.Helper()
	c, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{DataDir: data, Engine: c, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go c.Run(ctx)
	go func() { m.Run(ctx); close(done) }()
	return m, cancel, done
}

func waitState(t *testing.T, m *Manager, h string, states ...string) View {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d, err := m.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if d.State == s {
				return d.View
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d, _ := m.Get(h)
	t.Fatalf("torrent %s stayed %s (%s), want %v", h, d.State, d.Error, states)
	return View{}
}

func TestDownloadStopStartRemoveRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, data := t.TempDir(), t.TempDir()
	raw := makeTorrent(t, src, "a.bin", 300<<10, 1)
	addr := seeder(t, ctx, src, raw)

	m, stop, done := newManager(t, ctx, data)
	defer func() { stop(); <-done }()
	h, err := m.AddTorrent(raw, AddOptions{Peers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddTorrent(raw, AddOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v, want ErrExists", err)
	}
	v := waitState(t, m, h, StateSeeding)
	if v.Have != 300<<10 || v.Progress != 1 {
		t.Fatalf("seeding with have=%d progress=%v", v.Have, v.Progress)
	}
	want, _ := os.ReadFile(filepath.Join(src, "a.bin"))
	got, _ := os.ReadFile(filepath.Join(data, "a.bin"))
	if !bytes.Equal(want, got) {
		t.Fatal("downloaded data differs")
	}
	d, _ := m.Get(h)
	if len(d.Files) != 1 || d.Files[0].Have != 300<<10 {
		t.Fatalf("files: %+v", d.Files)
	}

	if err := m.Stop(h); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h, StateStopped)
	if err := m.Start(h); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h, StateSeeding)
	if err := m.Verify(h); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h, StateSeeding)

	// Restart: the torrent comes back, still complete, from the resume record.
	if err := m.Stop(h); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	m2, stop2, done2 := newManager(t, ctx, data)
	defer func() { stop2(); <-done2 }()
	if l := m2.List(); len(l) != 1 || l[0].Hash != h || l[0].State != StateStopped || l[0].Have != 300<<10 {
		t.Fatalf("after restart: %+v", l)
	}
	if err := m2.Start(h); err != nil {
		t.Fatal(err)
	}
	waitState(t, m2, h, StateSeeding)

	if err := m2.Remove(h, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "a.bin")); !os.IsNotExist(err) {
		t.Fatalf("data not deleted: %v", err)
	}
	if len(m2.List()) != 0 {
		t.Fatal("still listed after remove")
	}
	if recs, _ := m2.store.Load(); len(recs) != 0 {
		t.Fatal("record left in the store")
	}
}

func TestQueueAndSeedRatio(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	m, stop, done := newManager(t, ctx, data)
	defer func() { stop(); <-done }()
	if err := m.UpdateSettings(func(s *Settings) { s.MaxActive = 1 }); err != nil {
		t.Fatal(err)
	}
	// Two torrents nobody seeds: only one may download at a time.
	src := t.TempDir()
	h1, err := m.AddTorrent(makeTorrent(t, src, "x.bin", 64<<10, 2), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := m.AddTorrent(makeTorrent(t, src, "y.bin", 64<<10, 3), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h1, StateDownloading)
	time.Sleep(300 * time.Millisecond) // a few supervision ticks
	if v, _ := m.Get(h2); v.State != StateQueued {
		t.Fatalf("second torrent %s, want queued", v.State)
	}
	if err := m.Stop(h1); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h2, StateDownloading)

	// A complete torrent with ratio goal 0.0001 and no downloads: ratio is
	// uploaded/size = 0, so it keeps seeding; a time goal of 1 s stops it.
	raw := makeTorrent(t, data, "z.bin", 64<<10, 4)
	h3, err := m.AddTorrent(raw, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, m, h3, StateSeeding)
	one := int64(1)
	if err := m.Set(h3, Changes{SeedLimit: &one}); err != nil {
		t.Fatal(err)
	}
	v := waitState(t, m, h3, StateStopped)
	if !v.Finished {
		t.Fatal("stopped but not marked finished seeding")
	}
}

func TestResolveDir(t *testing.T) {
	data := t.TempDir()
	out := t.TempDir()
	c, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{DataDir: data, Engine: c})
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(out, filepath.Join(m.DataDir(), "link"))
	for _, tc := range []struct {
		dir string
		ok  bool
	}{
		{"", true}, {"sub/dir", true}, {m.DataDir() + "/x", true},
		{"../x", false}, {"/etc", false}, {"sub/../../x", false}, {"link/x", false}, {out, false},
	} {
		_, err := m.ResolveDir(tc.dir)
		if (err == nil) != tc.ok {
			t.Errorf("ResolveDir(%q) = %v, want ok=%v", tc.dir, err, tc.ok)
		}
	}
}
