package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %v", path, timeout)
}

// TestWatchFolder: a .torrent dropped into --watch is added and downloads;
// the file becomes .torrent.added; the same torrent dropped again is not
// added twice; an invalid one becomes .torrent.invalid; other files are
// left alone.
func TestWatchFolder(t *testing.T) {
	s := newSwarm(t, 1<<20)
	h, _ := infoHash(t, s.torrent)
	data, watch := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Minute)
	junk := filepath.Join(watch, "junk.torrent")
	os.WriteFile(junk, []byte("d4:infoi1e"), 0o644)
	os.Chtimes(junk, old, old) // not being written any more
	other := filepath.Join(watch, "readme.txt")
	os.WriteFile(other, []byte("not a torrent"), 0o644)

	d := startDaemon(t, data, "--watch", watch)
	raw, _ := os.ReadFile(s.torrent)
	if err := os.WriteFile(filepath.Join(watch, "content.torrent"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, h, "added from the watch folder and complete", 30*time.Second, func(v tview) bool { return v.Progress == 1 })
	got, _ := os.ReadFile(filepath.Join(data, s.name))
	if !bytes.Equal(got, s.data) {
		t.Fatal("content differs")
	}
	waitFile(t, filepath.Join(watch, "content.torrent.added"), 5*time.Second)
	waitFile(t, junk+".invalid", 5*time.Second)
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a .torrent was touched: %v", err)
	}

	// The same torrent again, upper-case extension: recognised, not duplicated.
	if err := os.WriteFile(filepath.Join(watch, "again.TORRENT"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(watch, "again.TORRENT.added"), 10*time.Second)
	if l := d.list(t); len(l) != 1 {
		t.Fatalf("%d torrents listed, want 1: %+v", len(l), l)
	}
	if _, err := os.Stat(filepath.Join(watch, "content.torrent")); !os.IsNotExist(err) {
		t.Errorf("the added .torrent is still there under its name: %v", err)
	}
}
