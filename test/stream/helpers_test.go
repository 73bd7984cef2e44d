package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

func TestMain(m *testing.M) { os.Exit(clients.Main(m)) }

// Programs this package needs besides the shoal binary (see .ci/run).
const (
	Chromium = "chromium"
	FFmpeg   = "ffmpeg"
)

// require skips the test unless every named program is on PATH; with
// SHOAL_REQUIRE_INTEROP=1 it fails instead (the clients.Require rule).
func require(t *testing.T, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv(clients.RequireEnv) == "1" {
		t.Fatalf("required programs missing: %v (%s=1)", missing, clients.RequireEnv)
	}
	t.Skipf("programs missing: %v (install them, see .ci/run)", missing)
}

// makeTorrent runs `shoal create` on path with the given piece length and
// web seeds and returns the .torrent's path.
func makeTorrent(t *testing.T, path string, pieceLen int64, webSeeds ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".torrent")
	args := []string{"create", "--no-date", "--piece-length", strconv.FormatInt(pieceLen, 10), "-o", out}
	for _, w := range webSeeds {
		args = append(args, "--web-seed", w)
	}
	if _, stderr, err := clients.RunShoal(t, time.Minute, append(args, path)...); err != nil {
		t.Fatalf("shoal create: %v\n%s", err, stderr)
	}
	return out
}

// startSeeder starts `shoal seed` of dataParent/<name> limited to
// uploadLimit bytes/s (0: unlimited) and waits for its port.
func startSeeder(t *testing.T, torrent, dataParent string, uploadLimit int64) *clients.Peer {
	t.Helper()
	var extra []string
	if uploadLimit > 0 {
		extra = append(extra, "--upload-limit", strconv.FormatInt(uploadLimit, 10))
	}
	s := clients.StartShoalSeeder(t, torrent, dataParent, extra...)
	if err := clients.WaitListening(s.Addr.String(), 20*time.Second); err != nil {
		t.Fatalf("seeder: %v\n%s", err, s.Log())
	}
	return s
}

// streamProc is a running `shoal stream`.
type streamProc struct {
	*clients.Proc
	URL string // the printed stream URL
	Out string // the download folder: the file is Out/<name>
}

var urlRe = regexp.MustCompile(`(?m)^(http://127\.0\.0\.1:\d+/\S+)$`)

// startStream starts `shoal stream` of torrent on 127.0.0.1 with the given
// peers and extra flags, and waits (bounded) for the URL it prints.
func startStream(t *testing.T, torrent string, peers []string, extra ...string) *streamProc {
	t.Helper()
	out := t.TempDir()
	port := clients.FreePort(t)
	args := []string{clients.ShoalBinary(t), "stream", "--listen", "127.0.0.1:0",
		"--peer-listen", fmt.Sprintf("127.0.0.1:%d", port), "--no-dht", "-o", out}
	for _, p := range peers {
		args = append(args, "--peer", p)
	}
	args = append(append(args, extra...), torrent)
	p := clients.StartProc(t, "shoal-stream", "", nil, args...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := urlRe.FindStringSubmatch(p.Log()); m != nil {
			return &streamProc{Proc: p, URL: m[1], Out: out}
		}
		if p.Exited() {
			t.Fatalf("shoal stream exited early:\n%s", p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("shoal stream printed no URL within 30s:\n%s", p.Log())
	return nil
}

// inHole reports whether byte off of the sparse file at path has never been
// written (SEEK_DATA finds no data at off). A missing file is all hole. A
// piece whose bytes include a hole is not downloaded yet.
func inHole(t *testing.T, path string, off int64) bool {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const seekData = 3 // SEEK_DATA (Linux)
	next, err := f.Seek(off, seekData)
	if err != nil {
		return true // ENXIO: no data at or after off
	}
	return next > off
}

// getRange fetches [from, from+n) of url with a Range request (n < 0:
// "bytes=from-") and checks the 206 status and Content-Range.
func getRange(c *http.Client, url string, from, n, size int64) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	end := size - 1
	if n >= 0 {
		end = from + n - 1
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, end))
	} else {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("range %d-%d: status %s", from, end, resp.Status)
	}
	if want := fmt.Sprintf("bytes %d-%d/%d", from, end, size); resp.Header.Get("Content-Range") != want {
		return nil, fmt.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
	}
	return io.ReadAll(io.LimitReader(resp.Body, size+1))
}

// sameBytes reports where got differs from want.
func sameBytes(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	n := min(len(want), len(got))
	for i := range n {
		if want[i] != got[i] {
			return fmt.Errorf("byte %d differs (got %d bytes, want %d)", i, len(got), len(want))
		}
	}
	return fmt.Errorf("got %d bytes, want %d", len(got), len(want))
}

// countingFileServer serves dir with http.FileServer, counts the body bytes
// it sends and, when rate > 0, sends at most rate bytes a second per
// response (a slow mirror).
type countingFileServer struct {
	h     http.Handler
	rate  int64
	bytes atomic.Int64
}

func newFileServer(dir string, rate int64) *countingFileServer {
	return &countingFileServer{h: http.FileServer(http.Dir(dir)), rate: rate}
}

func (s *countingFileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.ServeHTTP(&countingWriter{ResponseWriter: w, s: s, start: time.Now()}, r)
}

type countingWriter struct {
	http.ResponseWriter
	s     *countingFileServer
	start time.Time
	sent  int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if w.s.rate > 0 {
			chunk = p[:min(len(p), 8<<10)]
			// Sleep until sending this chunk keeps us at the rate.
			due := w.start.Add(time.Duration(float64(w.sent+int64(len(chunk))) / float64(w.s.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(min(d, 2*time.Second))
			}
		}
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.sent += int64(n)
		w.s.bytes.Add(int64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
