package stream

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// TestRangesWhileDownloading asks a real `shoal stream` for byte ranges
// while a seeder limited to 384 KiB/s is still uploading a 4 MiB file (at
// least ~10 s of transfer): ranges that start in pieces not yet downloaded
// (the leecher's sparse file has a hole there) block until those pieces
// arrive and then return the source's bytes exactly.
func TestRangesWhileDownloading(t *testing.T) {
	const (
		size     = 4 << 20
		pieceLen = 32 << 10
	)
	dataDir := t.TempDir()
	src := clients.MakeSingle(t, dataDir, "movie.mkv", size)
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	torrent := makeTorrent(t, src, pieceLen)
	seed := startSeeder(t, torrent, dataDir, 384<<10)
	st := startStream(t, torrent, []string{seed.Addr.String()})
	leeched := filepath.Join(st.Out, "movie.mkv")

	ranges := []struct {
		name    string
		from, n int64 // n < 0: open-ended "bytes=from-"
	}{
		{"middle, across pieces", 2<<20 + 12345, 100000},
		{"tail, into the last piece", size - 70000, 70000},
		{"two bytes across a piece boundary", 1<<20 + pieceLen - 1, 2},
		{"one byte", 3 << 20, 1},
		{"head", 0, 1000},
		{"open-ended from past the middle", size/2 + 777, -1},
	}
	c := &http.Client{Timeout: 90 * time.Second}
	holes := 0
	for _, r := range ranges {
		hole := inHole(t, leeched, r.from)
		if hole {
			holes++
		}
		got, err := getRange(c, st.URL, r.from, r.n, size)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		end := int64(size)
		if r.n >= 0 {
			end = r.from + r.n
		}
		if err := sameBytes(want[r.from:end], got); err != nil {
			t.Fatalf("%s (bytes %d-%d, started in a missing piece: %v): %v", r.name, r.from, end-1, hole, err)
		}
		t.Logf("%-36s bytes %7d-%7d ok (started in a piece not yet downloaded: %v)", r.name, r.from, end-1, hole)
	}
	// The seeder cannot have sent the file before the first request (about
	// 10 s at its limit), so at least that range started in a missing piece.
	if holes == 0 {
		t.Fatalf("no range started in a piece not yet downloaded; the test proved nothing")
	}

	// Finally the whole file in one plain GET.
	resp, err := c.Get(st.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 0, size)
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || len(got) > size {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("full GET: %s", resp.Status)
	}
	if err := sameBytes(want, got); err != nil {
		t.Fatalf("full GET: %v", err)
	}
}
