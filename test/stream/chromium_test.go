package stream

import (
	"context"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoal-p2p/shoal/test/clients"
)

// Test video: ffmpeg's lavfi testsrc with noise (so VP8 keeps the bitrate),
// constant 1 Mbit/s, a keyframe a second so seeks land quickly; about
// 2.5 MiB, 77 pieces of 32 KiB.
const (
	videoSeconds = 20
	videoBitrate = 1_000_000 // bits/s
	videoPiece   = 32 << 10
)

// makeWebM encodes the test video into dir/name with Debian's ffmpeg.
func makeWebM(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	br := fmt.Sprint(videoBitrate)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=320x240:rate=25:duration=%d", videoSeconds),
		"-vf", "noise=alls=30:allf=t", "-c:v", "libvpx", "-b:v", br, "-minrate", br, "-maxrate", br,
		"-bufsize", br, "-g", "25", "-deadline", "realtime", "-cpu-used", "8", "-an", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// downloaded reports whether the sparse file at path of size bytes has no
// hole left (every byte written).
func downloaded(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	const seekHole = 4 // SEEK_HOLE (Linux)
	off, err := f.Seek(0, seekHole)
	return err == nil && off >= size
}

// chromiumOptions are test/clients' loopback-only Chromium flags; the video
// must start without a user gesture.
func chromiumOptions(t *testing.T, exe string) []chromedp.ExecAllocatorOption {
	return clients.ChromiumOptions(t, exe, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

// videoState is what the page reports about its <video>.
type videoState struct {
	Time       float64 `json:"t"`
	Duration   float64 `json:"d"` // -1 while unknown or infinite
	ReadyState int     `json:"rs"`
	Error      int     `json:"err"` // MediaError code, 0 for none
	Paused     bool    `json:"paused"`
}

const stateJS = `(() => { const v = document.getElementById('v');
  return {t: v.currentTime, d: isFinite(v.duration) ? v.duration : -1, rs: v.readyState,
          err: v.error ? v.error.code : 0, paused: v.paused}; })()`

// waitVideo polls the page until ok accepts the state, the video reports
// an error, or timeout passes.
func waitVideo(ctx context.Context, timeout time.Duration, what string, ok func(videoState) bool) (videoState, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[videoState](stateJS))
		if err != nil {
			return st, fmt.Errorf("%s: reading the video state: %w", what, err)
		}
		if st.Error != 0 {
			return st, fmt.Errorf("%s: the video reports MediaError %d (state %+v)", what, st.Error, st)
		}
		if ok(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s: not reached within %v (last state %+v)", what, timeout, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChromiumPlaysWhileDownloading plays a WebM in headless Chromium from
// the URL of `shoal stream` while the only seeder uploads at 1.25x the
// video's bitrate (the full download takes at least 16 s): playback time
// advances past 1.5 s, and after a seek to the middle (while the download
// is still incomplete) it advances 1.5 s beyond the middle.
func TestChromiumPlaysWhileDownloading(t *testing.T) {
	require(t, Chromium, FFmpeg)
	exe, _ := exec.LookPath(Chromium)
	dataDir := t.TempDir()
	src := makeWebM(t, dataDir, "clip.webm")
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	torrent := makeTorrent(t, src, videoPiece)
	seed := startSeeder(t, torrent, dataDir, videoBitrate/8*5/4)

	// The browser starts first, so its start-up does not eat the window
	// in which the torrent is still downloading.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, chromiumOptions(t, exe)...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	st := startStream(t, torrent, []string{seed.Addr.String()})
	leeched := filepath.Join(st.Out, "clip.webm")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>shoal stream test</title>
<video id="v" src="%s" muted autoplay preload="auto" width="320" height="240"></video>`, html.EscapeString(st.URL))
	}))
	defer page.Close()
	if err := chromedp.Do(bctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	s, err := waitVideo(bctx, 45*time.Second, "playback past 1.5 s", func(s videoState) bool { return s.Time > 1.5 })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("playing: %+v (download complete: %v)", s, downloaded(leeched, size))

	mid := float64(videoSeconds) / 2
	if s.Duration > 0 {
		mid = math.Floor(s.Duration / 2)
	}
	midOff := size / 2
	missing := inHole(t, leeched, midOff)
	complete := downloaded(leeched, size)
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[float64](fmt.Sprintf(`document.getElementById('v').currentTime = %g`, mid))); err != nil {
		t.Fatalf("seek: %v", err)
	}
	t.Logf("seek to %.1f s; download complete at the seek: %v; byte %d (middle) not downloaded yet: %v", mid, complete, midOff, missing)
	if complete {
		t.Fatalf("the download finished before the seek (the seeder is limited to %d B/s for %d bytes); the test proved nothing", videoBitrate/8*5/4, size)
	}
	s, err = waitVideo(bctx, 45*time.Second, fmt.Sprintf("playback past %.1f s after the seek", mid+1.5), func(s videoState) bool {
		return s.Time > mid+1.5
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the seek: %+v (download complete: %v)", s, downloaded(leeched, size))
}
