package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/stream"
)

// TestWebseedOnly: a torrent whose only source is a web seed (Go's
// http.FileServer on loopback) downloads completely.
func TestWebseedOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 1<<20+777, 32<<10)
	srv := httptest.NewServer(http.FileServer(http.Dir(seedDir)))
	defer srv.Close()
	mi.URLList = []string{srv.URL + "/content.bin"}

	c := newTestClient(t)
	go c.Run(ctx)
	dir := t.TempDir()
	tor, err := c.Add(ctx, mi, Options{Root: dir, NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, tor) }()
	waitDone(t, tor, 30*time.Second)
	got, err := os.ReadFile(filepath.Join(dir, "content.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if wb := tor.WebseedBytes(); wb != int64(len(data)) {
		t.Fatalf("web seed bytes %d, want %d", wb, len(data))
	}
}

// TestStreamFromSession: HTTP range requests against a stream of a torrent
// that is downloading (from a web seed throttled per request) return the
// source bytes, including ranges starting in pieces not yet downloaded.
func TestStreamFromSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, 2<<20, 16<<10)
	fs := http.FileServer(http.Dir(seedDir))
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // ~128 pieces × 20 ms / 2 workers: a few seconds
		fs.ServeHTTP(w, r)
	}))
	defer slow.Close()
	mi.URLList = []string{slow.URL + "/content.bin"}

	c := newTestClient(t)
	go c.Run(ctx)
	tor, err := c.Add(ctx, mi, Options{Root: t.TempDir(), NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAll(t, cancel, tor) }()
	src := tor.StreamSource()
	h := stream.Handler(stream.File{
		Open: func(rctx context.Context) (io.ReadSeekCloser, error) {
			return stream.NewReader(rctx, src, mi.Info, 0, stream.Config{})
		},
		Name: "content.bin",
	})
	hs := httptest.NewServer(h)
	defer hs.Close()
	for _, rg := range [][2]int{{1_500_000, 1_600_000}, {2<<20 - 100, 2<<20 - 1}, {10, 70_000}, {0, 2<<20 - 1}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := http.DefaultClient.Do(req.WithContext(cctx))
		if err != nil {
			ccancel()
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ccancel()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data[rg[0]:rg[1]+1]) {
			t.Fatalf("range %v: %d bytes differing from the source", rg, len(b))
		}
	}
}
