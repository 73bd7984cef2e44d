package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// fakeClock is a manual clock for deterministic windows.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestReadWholeFileWhileDownloading(t *testing.T) {
	// Three files; stream the middle one, which starts and ends mid-piece.
	info, data := buildTorrent(t, 16384, []string{"a.txt", "b.webm", "c.txt"}, []int64{10_000, 150_001, 7_000})
	src := newFake(info, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src.download(ctx, time.Millisecond)
	r, err := NewReader(ctx, src, info, 1, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	f := info.Files[1]
	if !bytes.Equal(got, data[f.Offset:f.Offset+f.Length]) {
		t.Fatalf("read %d bytes differing from the file (%d bytes)", len(got), f.Length)
	}
}

func TestReadIntoMissingPieceWaits(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"v.mkv"}, []int64{5 * 16384})
	src := newFake(info, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := NewReader(ctx, src, info, 0, Config{})
	if err != nil {
		t.Fatal(err)
	}
	src.setReady(0)
	if _, err := r.Seek(16384-10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	// The read stops at the end of ready piece 0 rather than waiting.
	n, err := r.Read(buf)
	if err != nil || n != 10 {
		t.Fatalf("read at the end of a ready piece: %d, %v; want 10 bytes", n, err)
	}
	type res struct {
		n   int
		err error
	}
	done := make(chan res, 1)
	go func() {
		n, err := r.Read(buf)
		done <- res{n, err}
	}()
	select {
	case x := <-done:
		t.Fatalf("read into missing piece 1 returned %d, %v before it was ready", x.n, x.err)
	case <-time.After(50 * time.Millisecond):
	}
	// While blocked, piece 1 must be wanted first, due now.
	if w := src.lastWants(r.ID()); len(w) == 0 || w[0].Piece != 1 {
		t.Fatalf("blocked on piece 1, wants %v", w)
	}
	src.setReady(1)
	x := <-done
	if x.err != nil || x.n != 100 || !bytes.Equal(buf, data[16384:16384+100]) {
		t.Fatalf("read after piece 1 ready: %d, %v", x.n, x.err)
	}
}

func TestBlockedReadEndsWithContext(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"v.mkv"}, []int64{3 * 16384})
	src := newFake(info, data)
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := NewReader(ctx, src, info, 0, Config{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked read ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked read did not end with its context")
	}
}

func TestOpenPrioritisesHeadAndTail(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"v.mp4"}, []int64{100 * 16384})
	src := newFake(info, data)
	r, err := NewReader(context.Background(), src, info, 0, Config{TailBytes: 2 * 16384, HeadBytes: 1, InitialRate: 16384, Ahead: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := src.lastWants(r.ID())
	has := map[int]bool{}
	for _, x := range w {
		has[x.Piece] = true
	}
	for _, q := range []int{0, 1, 98, 99} {
		if !has[q] {
			t.Fatalf("open wants %v: missing piece %d (head, window or tail)", pieces(w), q)
		}
	}
	if has[50] {
		t.Fatalf("open wants %v: piece 50 is neither near the head nor the tail", pieces(w))
	}
	if w[0].Piece != 0 {
		t.Fatalf("open wants %v: piece 0 should be first", pieces(w))
	}
	r.Close()
	if w := src.lastWants(r.ID()); len(w) != 0 {
		t.Fatalf("after Close the reader still wants %v", pieces(w))
	}
}

func pieces(w []Want) []int {
	out := make([]int, len(w))
	for i, x := range w {
		out[i] = x.Piece
	}
	return out
}

func TestSeekReprioritisesAtOnce(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"v.webm"}, []int64{200 * 16384})
	src := newFake(info, data)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r, err := NewReader(context.Background(), src, info, 0, Config{Now: clk.now, InitialRate: 16384, Ahead: 4 * time.Second, MinPieces: 2, TailBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := src.numCalls()
	if _, err := r.Seek(120*16384+5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if src.numCalls() != before+1 {
		t.Fatalf("seek made %d Prioritize calls, want 1", src.numCalls()-before)
	}
	w := src.lastWants(r.ID())
	if len(w) == 0 || w[0].Piece != 120 || !w[0].Deadline.Equal(clk.t) {
		t.Fatalf("after seek to piece 120 wants %v; want piece 120 due now first", w)
	}
	// Window: 4 s at 16 KiB/s = 4 pieces ahead + the current one, spaced by the rate.
	want := []int{120, 121, 122, 123, 124}
	got := []int{}
	for _, x := range w {
		if x.Piece >= 100 && x.Piece < 199 { // 199: the tail piece
			got = append(got, x.Piece)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("window %v, want %v", got, want)
	}
	for _, x := range w {
		if x.Piece == 122 {
			// 2 pieces minus 5 bytes at 16384 B/s
			if d := x.Deadline.Sub(clk.t); d < 1990*time.Millisecond || d > 2*time.Second {
				t.Fatalf("piece 122 due in %v, want about 2 s", d)
			}
		}
	}
	// A seek to the same place changes nothing.
	n := src.numCalls()
	r.Seek(0, io.SeekCurrent)
	if src.numCalls() != n {
		t.Fatal("a no-op seek re-prioritised")
	}
}

func TestWindowGrowsWithRate(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"v.webm"}, []int64{700 * 16384})
	src := newFake(info, data)
	for q := range info.NumPieces() {
		src.setReady(q)
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r, _ := NewReader(context.Background(), src, info, 0, Config{Now: clk.now, InitialRate: 16384, MaxPieces: 1000})
	buf := make([]byte, 64<<10)
	// Read 64 KiB every 10 ms: 6.4 MB/s.
	for range 150 {
		clk.t = clk.t.Add(10 * time.Millisecond)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	}
	if rate := r.Rate(); rate < 5e6 || rate > 8e6 {
		t.Fatalf("rate %.0f B/s, want about 6.5e6", rate)
	}
	// All pieces are ready so nothing is wanted; make some missing again
	// in a fresh fake to see the window size.
	src2 := newFake(info, data)
	r.src, r.ready = src2, make([]bool, info.NumPieces())
	w := r.Window()
	// 8 s at ~6.5 MB/s ≈ 3200 pieces: the window runs to the file's end
	// (pieces 600..699), nearest first.
	if len(w) != 100 || w[0].Piece != 600 || w[99].Piece != 699 {
		t.Fatalf("window %v at %.0f B/s; want pieces 600..699", pieces(w), r.Rate())
	}
	r.cfg.MaxPieces = 30
	if w := r.Window(); len(w) != 30 {
		t.Fatalf("window of %d pieces with MaxPieces 30", len(w))
	}
}

func TestHandlerRangesMatchSource(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"x.bin", "movie.webm"}, []int64{5000, 300_000})
	f := info.Files[1]
	file := data[f.Offset : f.Offset+f.Length]
	src := newFake(info, data)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src.download(ctx, 2*time.Millisecond)
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := Handler(File{
		Open: func(rctx context.Context) (io.ReadSeekCloser, error) {
			return NewReader(rctx, src, info, 1, Config{})
		},
		Name: "movie.webm", ModTime: mod, ETag: `"abc-1"`,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	// Ranges that start in pieces not downloaded yet (the downloader has
	// barely started), at the tail, and spanning many pieces.
	ranges := []struct{ a, b int64 }{{250_000, 260_000}, {299_990, 299_999}, {0, 0}, {16000, 70000}, {123_456, 299_999}}
	for _, rg := range ranges {
		resp, b := get(map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", rg.a, rg.b)})
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("range %v: status %d", rg, resp.StatusCode)
		}
		if !bytes.Equal(b, file[rg.a:rg.b+1]) {
			t.Fatalf("range %v: bytes differ from the file", rg)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "video/webm" {
			t.Fatalf("Content-Type %q", ct)
		}
	}
	// Suffix range.
	if resp, b := get(map[string]string{"Range": "bytes=-1000"}); resp.StatusCode != 206 || !bytes.Equal(b, file[len(file)-1000:]) {
		t.Fatalf("suffix range: status %d", resp.StatusCode)
	}
	// Whole file.
	if resp, b := get(nil); resp.StatusCode != 200 || !bytes.Equal(b, file) {
		t.Fatalf("whole file: status %d, %d bytes", resp.StatusCode, len(b))
	}
	// If-Range with the current ETag: the range; with a stale one: the whole file.
	if resp, b := get(map[string]string{"Range": "bytes=10-19", "If-Range": `"abc-1"`}); resp.StatusCode != 206 || !bytes.Equal(b, file[10:20]) {
		t.Fatalf("If-Range current: status %d", resp.StatusCode)
	}
	if resp, b := get(map[string]string{"Range": "bytes=10-19", "If-Range": `"old"`}); resp.StatusCode != 200 || len(b) != len(file) {
		t.Fatalf("If-Range stale: status %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ := get(map[string]string{"Range": "bytes=10-19", "If-Range": mod.Format(http.TimeFormat)}); resp.StatusCode != 206 {
		t.Fatalf("If-Range by date: status %d", resp.StatusCode)
	}
	// Unsatisfiable range.
	if resp, _ := get(map[string]string{"Range": "bytes=400000-"}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: status %d", resp.StatusCode)
	}
	// Other methods are refused.
	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
}

func TestChooseFile(t *testing.T) {
	info, _ := buildTorrent(t, 16384, []string{"big.iso", "Movie.MKV", "clip.webm", "notes.txt"}, []int64{90_000, 50_000, 40_000, 100})
	tests := []struct {
		spec    string
		want    int
		wantErr bool
	}{
		{"", 1, false}, // largest media file, not the larger .iso
		{"2", 2, false},
		{"0", 0, false},
		{"7", 0, true},
		{"-1", 0, true},
		{"clip.webm", 2, false},
		{"movie", 1, false}, // case-insensitive substring
		{".webm", 2, false}, // suffix
		{"i", 0, true},      // ambiguous
		{"nothing", 0, true},
	}
	for _, tc := range tests {
		got, err := ChooseFile(info, tc.spec)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("ChooseFile(%q) = %d, %v; want %d (err %v)", tc.spec, got, err, tc.want, tc.wantErr)
		}
	}
	noMedia, _ := buildTorrent(t, 16384, []string{"a.txt", "b.bin"}, []int64{10, 20})
	if got, err := ChooseFile(noMedia, ""); err != nil || got != 1 {
		t.Errorf("no media: %d, %v; want the largest file 1", got, err)
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.webm": "video/webm", "a.MKV": "video/x-matroska", "x/y.mp4": "video/mp4",
		"noext": "application/octet-stream", "s.mp3": "audio/mpeg",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestNewReaderBadFile(t *testing.T) {
	info, data := buildTorrent(t, 16384, []string{"a"}, []int64{10})
	if _, err := NewReader(context.Background(), newFake(info, data), info, 3, Config{}); err == nil {
		t.Fatal("file 3 of 1 accepted")
	}
	var _ *metainfo.Info = info
}
