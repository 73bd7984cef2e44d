package session

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/storage"
)

// fullDisk is a storage whose writes fail with ENOSPC while full is set.
type fullDisk struct {
	storage.Storage
	full   atomic.Bool
	failed atomic.Int64
}

func (d *fullDisk) WriteAt(p []byte, off int64) (int, error) {
	if d.full.Load() {
		d.failed.Add(1)
		return 0, &os.PathError{Op: "write", Path: "content.bin", Err: syscall.ENOSPC}
	}
	return d.Storage.WriteAt(p, off)
}

// TestDiskFullPausesAndResumes: while writes fail, the torrent pauses with a
// clear error and records nothing as complete; once space is back it
// continues and finishes with correct data.
func TestDiskFullPausesAndResumes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 1<<20, 16<<10)
	seeder := newTestClient(t)
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Storage: storage.NewMemory(mi.Info.TotalLength())}
	disk.full.Store(true)
	c := newTestClient(t)
	go c.Run(ctx)
	lt, err := c.Add(ctx, mi, Options{Root: t.TempDir(), Storage: disk, Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, st, lt) }()
	deadline := time.Now().Add(20 * time.Second)
	for disk.failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond)
	s := lt.Stats()
	if s.Err == nil || !errors.Is(s.Err, syscall.ENOSPC) {
		t.Fatalf("want a disk-full error in the stats, got %v", s.Err)
	}
	if s.Have != 0 {
		t.Fatalf("%d pieces recorded complete although no write succeeded", s.Have)
	}
	select {
	case <-lt.Stopped():
		t.Fatal("torrent stopped instead of pausing")
	default:
	}
	disk.full.Store(false) // space freed
	waitDone(t, lt, 60*time.Second)
	got := make([]byte, len(data))
	disk.ReadAt(got, 0)
	if !bytes.Equal(got, data) {
		t.Fatal("content differs after recovering from a full disk")
	}
}

// TestSeederNeverServesChangedData: a file edited behind the seeder's back
// (mtime restored, so the resume record is still trusted) is caught when the
// piece is first requested; the leecher never receives the bad bytes.
func TestSeederNeverServesChangedData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	mi, _ := makeTorrent(t, seedDir, 512<<10, 16<<10)
	// first run writes a trusted resume record
	c0 := newTestClient(t)
	t0, err := c0.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	t0.Close()
	path := filepath.Join(seedDir, "content.bin")
	fi, _ := os.Stat(path)
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte("tampered"), 5*16<<10+100) // inside piece 5
	f.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime())

	seeder := newTestClient(t)
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Stats().Have; got != mi.Info.NumPieces() {
		t.Fatalf("resume record not trusted (have %d): the test needs it trusted", got)
	}
	c := newTestClient(t)
	go c.Run(ctx)
	lt, err := c.Add(ctx, mi, Options{Root: t.TempDir(), Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, st, lt) }()
	deadline := time.Now().Add(30 * time.Second)
	for lt.Stats().Have < mi.Info.NumPieces()-1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	ls, ss := lt.Stats(), st.Stats()
	if ls.Have != mi.Info.NumPieces()-1 || ls.Complete {
		t.Fatalf("leecher has %d/%d pieces; want all but the tampered one", ls.Have, mi.Info.NumPieces())
	}
	if ls.HashFails != 0 {
		t.Fatalf("leecher saw %d hash failures: the seeder served bad data", ls.HashFails)
	}
	if ss.Have != mi.Info.NumPieces()-1 || ss.HashFails == 0 {
		t.Fatalf("seeder still claims %d pieces (hash fails %d); the tampered piece should be dropped", ss.Have, ss.HashFails)
	}
}

// TestSeederCatchesTruncationWhileSeeding: a file truncated while the
// seeder runs is noticed; the lost pieces are dropped, not served as zeros.
func TestSeederCatchesTruncationWhileSeeding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	mi, _ := makeTorrent(t, seedDir, 512<<10, 16<<10)
	seeder := newTestClient(t)
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.Truncate(filepath.Join(seedDir, "content.bin"), 256<<10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(fileWatchEvery+1) * time.Second) // the next file check
	c := newTestClient(t)
	go c.Run(ctx)
	lt, err := c.Add(ctx, mi, Options{Root: t.TempDir(), Peers: []string{seeder.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, st, lt) }()
	half := mi.Info.NumPieces() / 2
	deadline := time.Now().Add(20 * time.Second)
	for lt.Stats().Have < half && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	ls, ss := lt.Stats(), st.Stats()
	if ls.HashFails != 0 {
		t.Fatalf("leecher saw %d hash failures: the seeder served the truncated part", ls.HashFails)
	}
	if ls.Have != half || ss.Have != half {
		t.Fatalf("leecher has %d, seeder claims %d pieces; want %d (the intact half)", ls.Have, ss.Have, half)
	}
}
