package webseed

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// makeTorrent writes files (path relative to dir → size) with random
// content and returns the torrent of root (a file or folder under dir).
func makeTorrent(t *testing.T, dir, root string, files map[string]int, pieceLen int64) *metainfo.Info {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	for name, size := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mi, _, err := metainfo.Create(context.Background(), metainfo.CreateOptions{
		Path: filepath.Join(dir, root), PieceLength: pieceLen, NoDate: true, Workers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mi.Info
}

func checkAll(t *testing.T, c *Client, info *metainfo.Info) map[string]int {
	t.Helper()
	from := map[string]int{}
	buf := make([]byte, info.PieceLength)
	for i := 0; i < info.NumPieces(); i++ {
		n, u, err := c.FetchPiece(context.Background(), i, buf)
		if err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		if int64(n) != info.PieceSize(i) {
			t.Fatalf("piece %d: %d bytes, want %d", i, n, info.PieceSize(i))
		}
		if sha1.Sum(buf[:n]) != info.PieceHash(i) {
			t.Fatalf("piece %d from %s: hash mismatch", i, u)
		}
		from[u]++
	}
	return from
}

func TestSingleFile(t *testing.T) {
	dir := t.TempDir()
	info := makeTorrent(t, dir, "movie file.webm", map[string]int{"movie file.webm": 100_000}, 16384)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, base := range []string{srv.URL + "/movie%20file.webm", srv.URL + "/"} {
		c, err := New(info, []string{base}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		checkAll(t, c, info)
		if got := c.Bytes(); got != info.TotalLength() {
			t.Fatalf("%s: Bytes %d, want %d", base, got, info.TotalLength())
		}
	}
}

func TestMultiFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{
		"pack/a.bin":              10_000,
		"pack/sub dir/b #1?.bin":  40_000, // needs escaping
		"pack/sub dir/empty.bin":  0,
		"pack/z/c%d.bin":          33_333,
		"pack/z/100% real ü.webm": 5,
	}
	info := makeTorrent(t, dir, "pack", files, 16384)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/"} {
		c, err := New(info, []string{base}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		checkAll(t, c, info)
	}
}

func TestFileURL(t *testing.T) {
	single := &metainfo.Info{Name: "a b.mkv", Files: []metainfo.File{{Path: []string{"a b.mkv"}}}}
	multi := &metainfo.Info{Name: "d", MultiFile: true, Files: []metainfo.File{{Path: []string{"x y", "f#?.txt"}}}}
	tests := []struct {
		info *metainfo.Info
		base string
		want string
	}{
		{single, "http://h/path/file.mkv", "http://h/path/file.mkv"},
		{single, "http://h/path/", "http://h/path/a%20b.mkv"},
		{multi, "http://h/m", "http://h/m/d/x%20y/f%23%3F.txt"},
		{multi, "http://h/m/", "http://h/m/d/x%20y/f%23%3F.txt"},
	}
	for _, tc := range tests {
		if got := FileURL(tc.info, tc.base, 0); got != tc.want {
			t.Errorf("FileURL(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	info := &metainfo.Info{Name: "x", PieceLength: 1, Files: []metainfo.File{{Path: []string{"x"}, Length: 1}}}
	if _, err := New(info, []string{"ftp://h/x", "not a url", "/relative"}, Config{}); err == nil {
		t.Fatal("New accepted no usable URL")
	}
	c, err := New(info, []string{"ftp://h/x", "http://h/x", "http://h/x"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Stats()); n != 1 {
		t.Fatalf("%d mirrors, want 1 (bad and duplicate URLs dropped)", n)
	}
}

func TestFailingMirrorBackedOff(t *testing.T) {
	dir := t.TempDir()
	info := makeTorrent(t, dir, "f.bin", map[string]int{"f.bin": 70_000}, 16384)
	good := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer good.Close()
	var badHits atomic.Int32
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer bad.Close()
	// bad first: unmeasured mirrors are tried in order, so it is tried once.
	c, err := New(info, []string{bad.URL + "/f.bin", good.URL + "/f.bin"}, Config{Explore: -1, MinBackoff: time.Hour, MaxBackoff: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	from := checkAll(t, c, info)
	if from[good.URL+"/f.bin"] != info.NumPieces() {
		t.Fatalf("pieces by mirror %v, want all from the good one", from)
	}
	if badHits.Load() != 1 {
		t.Fatalf("bad mirror hit %d times, want 1 (then backed off)", badHits.Load())
	}
	st := c.Stats()
	if st[0].Failures != 1 || !st[0].BackoffUntil.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("bad mirror stats %+v: want 1 failure and a backoff of about MinBackoff", st[0])
	}
	// Only the bad mirror left: every mirror is backed off.
	c2, _ := New(info, []string{bad.URL + "/f.bin"}, Config{MinBackoff: time.Hour})
	buf := make([]byte, info.PieceLength)
	if _, _, err := c2.FetchPiece(context.Background(), 0, buf); err == nil {
		t.Fatal("fetch from a failing mirror succeeded")
	}
	if _, _, err := c2.FetchPiece(context.Background(), 0, buf); !errors.Is(err, ErrNoMirror) {
		t.Fatalf("second fetch: %v, want ErrNoMirror", err)
	}
	if c2.NextReady().IsZero() {
		t.Fatal("NextReady zero while the only mirror is backed off")
	}
}

func TestRetryAfter(t *testing.T) {
	info := &metainfo.Info{Name: "x", PieceLength: 4, Pieces: make([]byte, 20), Files: []metainfo.File{{Path: []string{"x"}, Length: 4}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := New(info, []string{srv.URL}, Config{Now: func() time.Time { return now }, MinBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchPiece(context.Background(), 0, make([]byte, 4)); err == nil {
		t.Fatal("503 accepted")
	}
	if got, want := c.Stats()[0].BackoffUntil, now.Add(120*time.Second); !got.Equal(want) {
		t.Fatalf("BackoffUntil %v, want %v (Retry-After)", got, want)
	}
}

func TestPrefersFasterMirror(t *testing.T) {
	dir := t.TempDir()
	info := makeTorrent(t, dir, "f.bin", map[string]int{"f.bin": 20 * 16384}, 16384)
	fs := http.FileServer(http.Dir(dir))
	fast := httptest.NewServer(fs)
	defer fast.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(80 * time.Millisecond)
		fs.ServeHTTP(w, r)
	}))
	defer slow.Close()
	c, err := New(info, []string{slow.URL + "/f.bin", fast.URL + "/f.bin"}, Config{Explore: -1})
	if err != nil {
		t.Fatal(err)
	}
	from := checkAll(t, c, info)
	// Each unmeasured mirror is tried once, then the faster one wins.
	if from[slow.URL+"/f.bin"] != 1 {
		t.Fatalf("pieces by mirror %v: want the slow mirror used once (to measure it)", from)
	}
}

// TestChooseByScore checks the choice from given measurements, without a
// network: lowest latency + size/throughput wins, unmeasured first.
func TestChooseByScore(t *testing.T) {
	info := &metainfo.Info{Name: "x", PieceLength: 1 << 20, Pieces: make([]byte, 20), Files: []metainfo.File{{Path: []string{"x"}, Length: 1 << 20}}}
	c, err := New(info, []string{"http://a/x", "http://b/x", "http://c/x"}, Config{Explore: -1})
	if err != nil {
		t.Fatal(err)
	}
	set := func(i int, tp float64, lat time.Duration) {
		c.mirrors[i].st.Fetches, c.mirrors[i].st.Throughput, c.mirrors[i].st.Latency = 1, tp, lat
	}
	set(0, 10e6, 500*time.Millisecond) // 0.5 + 0.1 s
	set(1, 2e6, 10*time.Millisecond)   // 0.01 + 0.5 s
	if m := c.chooseLocked(1<<20, nil); m != c.mirrors[2] {
		t.Fatalf("chose %s, want the unmeasured mirror", m.url)
	}
	set(2, 1e6, 0) // 1 s
	if m := c.chooseLocked(1<<20, nil); m != c.mirrors[1] {
		t.Fatalf("chose %s for 1 MiB, want b (closest total)", m.url)
	}
	if m := c.chooseLocked(16<<20, nil); m != c.mirrors[0] {
		t.Fatalf("chose %s for 16 MiB, want a (highest throughput)", m.url)
	}
	c.mirrors[0].slots = 0
	if m := c.chooseLocked(16<<20, nil); m != c.mirrors[1] {
		t.Fatalf("chose %s with a full, want b", m.url)
	}
	// Exploration sometimes picks another mirror.
	c.cfg.Explore = 0.5
	c.mirrors[0].slots = 2
	seen := map[string]bool{}
	for range 200 {
		seen[c.chooseLocked(1<<20, nil).url] = true
	}
	if len(seen) != 3 {
		t.Fatalf("exploration reached %d mirrors, want 3", len(seen))
	}
}

// rangeless serves the whole file with 200 whatever the Range header says.
type rangeless struct{ data []byte }

func (h rangeless) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(len(h.data)))
	w.WriteHeader(http.StatusOK)
	w.Write(h.data)
}

func TestStatus200WithoutRange(t *testing.T) {
	dir := t.TempDir()
	info := makeTorrent(t, dir, "f.bin", map[string]int{"f.bin": 6 * 16384}, 16384)
	data, err := os.ReadFile(filepath.Join(dir, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rangeless{data})
	defer srv.Close()
	c, err := New(info, []string{srv.URL}, Config{MaxDiscard: 2 * 16384, MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16384)
	for i := 0; i <= 2; i++ { // offsets 0, 16 KiB, 32 KiB: within MaxDiscard
		if _, _, err := c.FetchPiece(context.Background(), i, buf); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		if !bytes.Equal(buf, data[i*16384:(i+1)*16384]) {
			t.Fatalf("piece %d: wrong bytes", i)
		}
	}
	if _, _, err := c.FetchPiece(context.Background(), 3, buf); !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrNoMirror) {
		t.Fatalf("piece 3 beyond MaxDiscard: %v, want an error", err)
	}
}

func TestWrongContentRange(t *testing.T) {
	info := &metainfo.Info{Name: "x", PieceLength: 4, Pieces: make([]byte, 40), Files: []metainfo.File{{Path: []string{"x"}, Length: 8}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-3/8") // always the first range
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("abcd"))
	}))
	defer srv.Close()
	c, _ := New(info, []string{srv.URL}, Config{})
	buf := make([]byte, 4)
	if _, _, err := c.FetchPiece(context.Background(), 0, buf); err != nil {
		t.Fatalf("piece 0: %v", err)
	}
	if _, _, err := c.FetchPiece(context.Background(), 1, buf); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("piece 1 answered with range 0-3: %v, want ErrBadResponse", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	dir := t.TempDir()
	info := makeTorrent(t, dir, "f.bin", map[string]int{"f.bin": 16 * 16384}, 16384)
	fs := http.FileServer(http.Dir(dir))
	var cur, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		fs.ServeHTTP(w, r)
		cur.Add(-1)
	}))
	defer srv.Close()
	c, _ := New(info, []string{srv.URL + "/f.bin"}, Config{MaxPerMirror: 2})
	var wg sync.WaitGroup
	errs := make(chan error, info.NumPieces())
	for i := 0; i < info.NumPieces(); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16384)
			if _, _, err := c.FetchPiece(context.Background(), i, buf); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d concurrent requests to one mirror, limit 2", p)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		first, total int64
		ok           bool
	}{
		{"bytes 0-99/200", 0, 200, true},
		{"bytes 5-9/*", 5, -1, true},
		{"bytes 9-5/20", 0, 0, false},
		{"bytes 0-99/50", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes -1-5/9", 0, 0, false},
		{"bytes 0-5", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		f, tot, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (f != tc.first || tot != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tc.in, f, tot, ok)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 0-99/200")
	f.Add("bytes 5-9/*")
	f.Fuzz(func(t *testing.T, s string) {
		first, total, ok := parseContentRange(s)
		if ok && (first < 0 || (total != -1 && total <= first)) {
			t.Fatalf("%q: first %d total %d", s, first, total)
		}
	})
}
