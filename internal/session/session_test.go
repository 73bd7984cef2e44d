package session

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// makeTorrent writes a file of size bytes with deterministic content and
// returns its metainfo (no trackers) and the data.
func makeTorrent(t *testing.T, dir string, size int, pieceLen int64) (*metainfo.MetaInfo, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, uint64(size)))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	src := filepath.Join(dir, "content.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, _, err := metainfo.Create(context.Background(), metainfo.CreateOptions{Path: src, PieceLength: pieceLen, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	return mi, data
}

func newTestClient(t *testing.T) *Client {
	t.Helper()
	return newTestClientWith(t, Config{Listen: "127.0.0.1:0"})
}

// newTestClientWith makes a client from cfg, logging to stderr at debug
// level when SHOAL_TEST_LOG is set.
func newTestClientWith(t *testing.T, cfg Config) *Client {
	t.Helper()
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stopAll cancels ctx and waits until every torrent has shut down (and
// written its resume record), before the test's temp dirs are removed.
func stopAll(t *testing.T, cancel context.CancelFunc, ts ...*Torrent) {
	cancel()
	for _, tor := range ts {
		select {
		case <-tor.Stopped():
		case <-time.After(10 * time.Second):
			t.Errorf("torrent did not stop")
		}
	}
}

func waitDone(t *testing.T, tor *Torrent, d time.Duration) {
	t.Helper()
	select {
	case <-tor.Done():
	case <-time.After(d):
		st := tor.Stats()
		t.Fatalf("not complete after %v: have %d/%d peers %d", d, st.Have, st.NumPieces, st.Peers)
	}
}

// TestSwarm: one seeder and three leechers that only know the seeder; each
// leecher is also told of the earlier leechers, so pieces flow between them.
func TestSwarm(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 3<<20+12345, 32<<10)

	seeder := newTestClient(t)
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stats().Complete {
		t.Fatalf("seeder does not see its data: %+v", st.Stats())
	}
	peers := []string{seeder.Addr().String()}
	var leechers []*Torrent
	var dirs []string
	for i := 0; i < 3; i++ {
		c := newTestClient(t)
		go c.Run(ctx)
		dir := t.TempDir()
		tor, err := c.Add(ctx, mi, Options{Root: dir, Peers: append([]string(nil), peers...)})
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, c.Addr().String())
		leechers = append(leechers, tor)
		dirs = append(dirs, dir)
	}
	defer func() { stopAll(t, cancel, append(leechers, st)...) }()
	var leecherUp int64
	for i, l := range leechers {
		waitDone(t, l, 60*time.Second)
		got, err := os.ReadFile(filepath.Join(dirs[i], "content.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("leecher %d: content differs", i)
		}
	}
	time.Sleep(1200 * time.Millisecond) // let the once-a-second counters catch up
	for i, l := range leechers {
		s := l.Stats()
		t.Logf("leecher %d: downloaded %d uploaded %d", i, s.Downloaded, s.Uploaded)
		leecherUp += s.Uploaded
	}
	t.Logf("seeder uploaded %d, leechers together %d", st.Stats().Uploaded, leecherUp)
}

// TestResume: a download interrupted midway resumes from its resume record
// without fetching verified pieces again.
func TestResume(t *testing.T) {
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 2<<20, 16<<10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seeder := newTestClient(t)
	go seeder.Run(ctx)
	ts, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// first run: stop once some pieces are verified
	ctx1, cancel1 := context.WithCancel(ctx)
	c1 := newTestClient(t)
	go c1.Run(ctx1)
	t1, err := c1.Add(ctx1, mi, Options{Root: dir, Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for t1.Stats().Have < 10 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cancel1()
	<-t1.Stopped()
	had := t1.Stats().Have
	if had == 0 {
		t.Fatal("first run verified nothing")
	}

	// second run resumes
	c2 := newTestClient(t)
	go c2.Run(ctx)
	t2, err := c2.Add(ctx, mi, Options{Root: dir, Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, ts, t2) }()
	if got := t2.Stats().ResumedPieces; got < had {
		t.Fatalf("resumed %d pieces, first run had verified %d", got, had)
	}
	waitDone(t, t2, 30*time.Second)
	got, _ := os.ReadFile(filepath.Join(dir, "content.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("content differs after resume")
	}
	time.Sleep(1100 * time.Millisecond)
	want := mi.Info.TotalLength() - int64(had)*mi.Info.PieceLength
	if d := t2.Stats().Downloaded; d > want {
		t.Fatalf("second run downloaded %d bytes, at most %d were missing", d, want)
	}
}

// TestUploadLimit: a seeder limited to 1 MiB/s cannot deliver 3 MiB in less
// than about two seconds (the bucket starts full, so allow for its depth).
func TestUploadLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 3<<20, 64<<10)
	seeder, err := NewClient(Config{Listen: "127.0.0.1:0", UploadRate: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t)
	go c.Run(ctx)
	dir := t.TempDir()
	start := time.Now()
	lt, err := c.Add(ctx, mi, Options{Root: dir, Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, st, lt) }()
	waitDone(t, lt, 60*time.Second)
	elapsed := time.Since(start)
	minimum := time.Duration(float64(len(data)-2*(1<<20)/10-limitBurst) / float64(1<<20) * float64(time.Second))
	if elapsed < minimum {
		t.Fatalf("3 MiB arrived in %v through a 1 MiB/s limit (at least %v expected)", elapsed, minimum)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "content.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	t.Logf("3 MiB through a 1 MiB/s upload limit took %v", elapsed)
}

// TestFilePriorities: in a multi-file torrent, a skipped file is not
// downloaded (beyond pieces it shares with wanted files), and Done fires
// when the wanted files are complete.
func TestFilePriorities(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	root := filepath.Join(seedDir, "pack")
	os.MkdirAll(root, 0o755)
	want := bytes.Repeat([]byte("wanted!!"), 40000)  // 320000 bytes
	skip := bytes.Repeat([]byte("skipped."), 100000) // 800000 bytes
	os.WriteFile(filepath.Join(root, "a-wanted.bin"), want, 0o644)
	os.WriteFile(filepath.Join(root, "b-skipped.bin"), skip, 0o644)
	mi, _, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: root, PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	seeder := newTestClient(t)
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t)
	go c.Run(ctx)
	dir := t.TempDir()
	lt, err := c.Add(ctx, mi, Options{Root: dir, FilePriorities: []int{FileNormal, FileSkip}, Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, st, lt) }()
	waitDone(t, lt, 30*time.Second)
	got, _ := os.ReadFile(filepath.Join(dir, "pack", "a-wanted.bin"))
	if !bytes.Equal(got, want) {
		t.Fatal("wanted file differs")
	}
	time.Sleep(1100 * time.Millisecond)
	s := lt.Stats()
	if s.Complete || !s.Done {
		t.Fatalf("complete=%v done=%v; want a done but incomplete torrent", s.Complete, s.Done)
	}
	// at most one piece is shared between the two files
	if limit := int64(len(want)) + 16<<10; s.Downloaded > limit {
		t.Fatalf("downloaded %d bytes; the wanted file and its boundary piece are only %d", s.Downloaded, limit)
	}
	if err := lt.SetFilePriorities([]int{FileNormal}); err == nil {
		t.Fatal("a priority list of the wrong length was accepted")
	}
}
