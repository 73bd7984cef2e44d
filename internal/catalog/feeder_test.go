package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// peerFetcher serves an info dictionary only when asked with the peer that
// has it, and records the peers of each call.
type peerFetcher struct {
	mu    sync.Mutex
	has   map[metainfo.Hash]string // info-hash → the one peer holding it
	infos map[metainfo.Hash][]byte
	calls map[metainfo.Hash][][]string
}

func (f *peerFetcher) FetchMetadata(_ context.Context, m *metainfo.Magnet) ([]byte, []netip.AddrPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m.InfoHash] = append(f.calls[m.InfoHash], m.Peers)
	for _, p := range m.Peers {
		if p == f.has[m.InfoHash] {
			return f.infos[m.InfoHash], nil, nil
		}
	}
	return nil, nil, errors.New("no peer gave the metadata")
}

func (f *peerFetcher) numCalls(ih metainfo.Hash) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[ih])
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFeeder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := catalog.OpenSQLite(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hA, rawA := makeInfo(t, "Alpha Live Concert")
	hB, _ := makeInfo(t, "Nobody Has This")
	hU, rawU := makeInfo(t, "Uploaded Before")
	infoU, err := metainfo.ParseInfo(rawU)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, catalog.FromInfo(infoU, time.Now())); err != nil {
		t.Fatal(err)
	}
	pA := netip.MustParseAddrPort("127.0.0.1:7001")
	f := &peerFetcher{has: map[metainfo.Hash]string{hA: pA.String()}, infos: map[metainfo.Hash][]byte{hA: rawA},
		calls: map[metainfo.Hash][][]string{}}
	fd, err := catalog.NewFeeder(catalog.FeederConfig{Store: s, Fetcher: f, Rate: 1000, Parallel: 2,
		MaxTries: 2, RetryAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fd.Run(ctx) }()

	fd.Announce(hA, netip.MustParseAddrPort("127.0.0.1:7000"), 0, 1) // a leecher without the metadata…
	fd.Announce(hA, pA, 1, 1)                                        // …and the seeder that has it
	fd.Announce(hB, netip.MustParseAddrPort("127.0.0.1:7002"), 1, 0)
	fd.Announce(hU, netip.MustParseAddrPort("127.0.0.1:7003"), 3, 4)

	waitFor(t, "A indexed with its counts", func() bool {
		h, err := s.Get(ctx, hA)
		return err == nil && h.Seeders == 1 && h.Leechers == 1
	})
	waitFor(t, "B given up", func() bool { return fd.Stats().GaveUp == 1 })
	waitFor(t, "U counts", func() bool { h, err := s.Get(ctx, hU); return err == nil && h.Seeders == 3 && h.Leechers == 4 })
	if hs, _, err := s.Search(ctx, catalog.Query{Text: "live conc"}); err != nil || len(hs) != 1 || hs[0].InfoHash != hA {
		t.Fatalf("search after feeding: %+v %v", hs, err)
	}
	// Counts keep following announces of a known torrent, with no new fetch.
	fd.Announce(hA, pA, 5, 0)
	waitFor(t, "A counts updated", func() bool { h, _ := s.Get(ctx, hA); return h.Seeders == 5 && h.Leechers == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := f.numCalls(hA); n != 1 {
		t.Errorf("A fetched %d times, want 1", n)
	}
	if n := f.numCalls(hB); n != 2 {
		t.Errorf("B fetched %d times, want MaxTries = 2", n)
	}
	if n := f.numCalls(hU); n != 0 {
		t.Errorf("U (already in the store) fetched %d times", n)
	}
	f.mu.Lock()
	peers := f.calls[hA][0]
	f.mu.Unlock()
	if strings.Join(peers, ",") != "127.0.0.1:7000,127.0.0.1:7001" {
		t.Errorf("A fetched from %v, want both announcers", peers)
	}
	if st := fd.Stats(); st.Indexed != 1 || st.Failed != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFeederQueueFull: Announce never blocks; the overflow is counted.
func TestFeederQueueFull(t *testing.T) {
	s, err := catalog.OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd, err := catalog.NewFeeder(catalog.FeederConfig{Store: s, Fetcher: &peerFetcher{}, QueueLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // Run is not running: nothing drains the queue
		fd.Announce(metainfo.Hash{byte(i)}, netip.MustParseAddrPort("127.0.0.1:1"), 1, 0)
	}
	if d := fd.Stats().Dropped; d != 7 {
		t.Fatalf("dropped %d, want 7", d)
	}
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	s, err := catalog.OpenSQLite(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := filepath.Join(t.TempDir(), "Open Movie Night")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "feature.mkv"), []byte("data"), 0o644)
	mi, torrent, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: dir, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	h := catalog.Mux(s, nil, nil)
	post := func(ct string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/upload", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("torrent", "x.torrent")
	fw.Write(torrent)
	mw.Close()
	for _, c := range []struct {
		name, ct string
		body     []byte
		status   int
	}{
		{"raw", "application/x-bittorrent", torrent, 200},
		{"multipart", mw.FormDataContentType(), form.Bytes(), 200},
		{"junk", "application/x-bittorrent", []byte("d4:spam"), 400},
		{"empty", "application/x-bittorrent", nil, 400},
		{"too large", "application/x-bittorrent", make([]byte, catalog.MaxUploadSize+100<<10), 413},
		{"form without torrent", "multipart/form-data; boundary=xx", []byte("--xx--\r\n"), 400},
	} {
		w := post(c.ct, c.body)
		if w.Code != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, w.Code, w.Body, c.status)
		}
		if c.status == 200 && !strings.Contains(w.Body.String(), mi.InfoHash.String()) {
			t.Errorf("%s: answer %s lacks the info-hash", c.name, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/upload", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /upload: %d", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/search?q=movie+nig", nil))
	if !strings.Contains(w.Body.String(), `"name":"Open Movie Night"`) {
		t.Errorf("uploaded torrent not found: %s", w.Body)
	}
}
