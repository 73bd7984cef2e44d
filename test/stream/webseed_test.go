package stream

import (
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// startWebseed serves dir on 127.0.0.1 with Go's http.FileServer (at most
// rate bytes/s per response when rate > 0) and returns the server and its
// base URL ("http://127.0.0.1:P/").
func startWebseed(t *testing.T, dir string, rate int64) (*countingFileServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFileServer(dir, rate)
	srv := &http.Server{Handler: fs, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fs, "http://" + ln.Addr().String() + "/"
}

// TestWebseedOnly: a torrent whose only source is a web seed (no peer, no
// tracker, no DHT) downloads completely and identically with `shoal get`.
func TestWebseedOnly(t *testing.T) {
	dataDir := t.TempDir()
	src := clients.MakeSingle(t, dataDir, "only-webseed.bin", 3<<20+12345) // a short last piece
	ws, base := startWebseed(t, dataDir, 0)
	torrent := makeTorrent(t, src, 64<<10, base) // BEP 19: URL ending in "/" + name
	out := t.TempDir()
	leech := clients.StartShoalLeecher(t, torrent, out)
	if err := leech.WaitDone(60 * time.Second); err != nil {
		t.Fatalf("shoal get from a web seed only: %v\n%s", err, leech.Log())
	}
	clients.RequireSameTree(t, src, filepath.Join(out, "only-webseed.bin"))
	if n := ws.bytes.Load(); n < 3<<20+12345 {
		t.Fatalf("the web seed sent %d bytes, less than the file", n)
	}
	t.Logf("web seed sent %d bytes", ws.bytes.Load())
}

var uploadedRe = regexp.MustCompile(`uploaded (\d+) bytes`)

// TestWebseedAndSeeder: with a web seed (limited to 256 KiB/s a request)
// and a shoal seeder (limited to 256 KiB/s) the 4 MiB download completes,
// and both sources delivered bytes: the web seed's counter and the
// seeder's own "uploaded N bytes" on exit are both positive.
func TestWebseedAndSeeder(t *testing.T) {
	dataDir := t.TempDir()
	const size = 4 << 20
	src := clients.MakeSingle(t, dataDir, "both.bin", size)
	ws, base := startWebseed(t, dataDir, 256<<10)
	torrent := makeTorrent(t, src, 32<<10, base+"both.bin") // the file's own URL
	seed := startSeeder(t, torrent, dataDir, 256<<10)
	out := t.TempDir()
	leech := clients.StartShoalLeecher(t, torrent, out, "--peer", seed.Addr.String())
	if err := leech.WaitDone(90 * time.Second); err != nil {
		t.Fatalf("shoal get from a web seed and a seeder: %v\n%s", err, leech.Log())
	}
	clients.RequireSameTree(t, src, filepath.Join(out, "both.bin"))
	seed.Stop() // prints "stopped seeding: uploaded N bytes"
	m := uploadedRe.FindAllStringSubmatch(seed.Log(), -1)
	if m == nil {
		t.Fatalf("the seeder reported no uploaded bytes:\n%s", seed.Log())
	}
	fromSeeder, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	fromWebseed := ws.bytes.Load()
	t.Logf("seeder uploaded %d bytes, web seed sent %d bytes (file %d)", fromSeeder, fromWebseed, size)
	if fromSeeder <= 0 || fromWebseed <= 0 {
		t.Fatalf("both sources should contribute: seeder %d bytes, web seed %d bytes", fromSeeder, fromWebseed)
	}
}
