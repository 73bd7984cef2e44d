package daemon

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// smallTorrent writes a one-piece file of n bytes into dir and returns
// its trackerless .torrent bytes.
func smallTorrent(t testing.TB, dir string, i, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	for j := range data {
		data[j] = byte(i*31 + j*7 + j>>8)
	}
	return writeTorrent(t, dir, fmt.Sprintf("small-%04d.bin", i), data)
}

// smallTorrentNamed is smallTorrent with a chosen file name.
func smallTorrentNamed(t testing.TB, dir, name string) []byte {
	return writeTorrent(t, dir, name, []byte("shoal "+name))
}

func writeTorrent(t testing.TB, dir, name string, data []byte) []byte {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(data)
	type info struct {
		Length      int64  `bencode:"length"`
		Name        string `bencode:"name"`
		PieceLength int64  `bencode:"piece length"`
		Pieces      string `bencode:"pieces"`
	}
	b, err := bencode.Marshal(struct {
		Info info `bencode:"info"`
	}{info{int64(len(data)), name, 16 << 10, string(sum[:])}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestart1000 adds 1,000 small complete torrents (each hashed once,
// so the engine writes its resume record), stops the daemon, and measures
// a restart: the time from starting the process until the API answers
// listing all 1,000, and until all 1,000 are seeding. No timing assertion:
// the figures are logged. A restart must not re-hash: one file's bytes are
// changed behind the daemon's back (size and modification time kept), and
// it must still be reported complete, which only trusting the resume
// record explains; nothing is downloaded.
func TestRestart1000(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1000
	data := t.TempDir()
	torrents := make([][]byte, n)
	for i := range torrents {
		torrents[i] = smallTorrent(t, data, i, 4<<10+i)
	}
	d := startDaemon(t, data)
	t0 := time.Now()
	for i, raw := range torrents {
		if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw}); code != 201 {
			t.Fatalf("add %d: %d %s", i, code, body)
		}
	}
	added := time.Since(t0)
	seeding := func(d *daemonProc) int {
		c := 0
		for _, v := range d.list(t) {
			if v.State == "seeding" && v.Progress == 1 {
				c++
			}
		}
		return c
	}
	deadline := time.Now().Add(60 * time.Second)
	for seeding(d) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if c := seeding(d); c < n {
		t.Fatalf("first run: %d of %d seeding after 60 s\n%s", c, n, d.log)
	}
	t.Logf("first run: 1,000 torrents added in %v, all seeding after %v (each hashed once)", added.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	d.stop()

	// Change file 0's content, keeping its size and modification time.
	p0 := filepath.Join(data, "small-0000.bin")
	fi, err := os.Stat(p0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p0, make([]byte, fi.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p0, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	// Restart: time to an API listing all 1,000, then to all seeding.
	ui := d.ui
	start0 := time.Now()
	d2 := &daemonProc{proc: start(t, "daemon", "--ui", ui, "--listen", "127.0.0.1:"+itoa(freePort(t)), "--no-dht", "--data", data), ui: ui, url: "http://" + ui}
	var listed, allSeeding time.Duration
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var l []tview
		if err := d2.getJSON("/api/torrents", &l); err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if listed == 0 && len(l) == n {
			listed = time.Since(start0)
		}
		c := 0
		for _, v := range l {
			if v.State == "seeding" {
				c++
			}
		}
		if c == n {
			allSeeding = time.Since(start0)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if listed == 0 || allSeeding == 0 {
		t.Fatalf("restart: listed after %v, all seeding after %v (0 = not within 60 s)\n%s", listed, allSeeding, d2.log)
	}
	var down int64
	for _, v := range d2.list(t) {
		down += v.Downloaded
		if v.Name == "small-0000.bin" && v.Progress != 1 {
			t.Errorf("restart re-hashed: the changed file's torrent is at %v", v.Progress)
		}
	}
	if down != 0 {
		t.Errorf("restart downloaded %d bytes of complete torrents", down)
	}
	t.Logf("restart with %d torrents: API listing all after %v, all seeding after %v (process start to ready)", n, listed.Round(time.Millisecond), allSeeding.Round(time.Millisecond))
	t.Logf("daemon said: %s", firstLine(d2.log.String()))
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
