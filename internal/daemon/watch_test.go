package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestScanWatchPartialFile: a .torrent still being copied in (it does not
// parse yet and changed just now) is left for a later scan, not renamed
// .invalid; once complete it is added; a file that stays broken is marked
// .invalid once it has settled.
func TestScanWatchPartialFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, src, watch := t.TempDir(), t.TempDir(), t.TempDir()
	raw := makeTorrent(t, src, "a.bin", 100<<10, 3)
	m, stop, done := newManager(t, ctx, data)
	defer func() { stop(); <-done }()

	p := filepath.Join(watch, "a.torrent")
	if err := os.WriteFile(p, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if n := m.ScanWatch(watch); n != 0 {
		t.Fatalf("a half-written file was added: %d", n)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("a half-written file was moved away: %v", err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := m.ScanWatch(watch); n != 1 {
		t.Fatalf("the completed file: %d added, want 1", n)
	}
	if _, err := os.Stat(p + ".added"); err != nil {
		t.Fatalf("not renamed .added: %v", err)
	}

	bad := filepath.Join(watch, "b.torrent")
	os.WriteFile(bad, []byte("d4:info"), 0o644)
	if m.ScanWatch(watch); fileExists(bad + ".invalid") {
		t.Fatal("a freshly written broken file was marked invalid at once")
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(bad, old, old)
	m.ScanWatch(watch)
	if !fileExists(bad + ".invalid") {
		t.Fatal("a settled broken file was not marked .invalid")
	}
	if len(m.List()) != 1 {
		t.Fatalf("%d torrents, want 1", len(m.List()))
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
