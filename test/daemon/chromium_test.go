package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoal-p2p/shoal/test/clients"
)

// chromiumOptions are test/clients' loopback-only Chromium flags plus the
// window size the UI screenshots use.
func chromiumOptions(t *testing.T, exe string) []chromedp.ExecAllocatorOption {
	return clients.ChromiumOptions(t, exe, chromedp.WindowSize(1100, 900))
}

// browser is one headless Chromium tab on the daemon's UI.
type browser struct {
	t   *testing.T
	ctx context.Context
	art string // folder for screenshots
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatal("chromium not installed")
		}
		t.Skip("chromium not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, chromiumOptions(t, exe)...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	art := os.Getenv("SHOAL_ARTIFACTS")
	if art == "" {
		art = t.TempDir()
	} else if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: bctx, art: art}
}

// do runs steps, failing the test on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks the element a CSS selector finds, with the mouse. The list
// is live (it updates every second), so a click that finds its node gone
// is tried again.
func (b *browser) click(sel string) {
	b.t.Helper()
	var err error
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.t.Fatalf("click %s: %v", sel, err)
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS polls a boolean expression until it holds; on timeout it fails
// with the value of show (an expression describing the page).
func (b *browser) waitJS(what string, timeout time.Duration, js, show string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if eval[bool](b, js) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.shot("timeout-" + strings.ReplaceAll(what, " ", "-"))
	b.t.Fatalf("page: waited %s for %s; page shows: %s", timeout, what, eval[string](b, show))
}

// shot saves a full-page PNG screenshot and logs its path.
func (b *browser) shot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.art, "daemon-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Fatalf("screenshot %s is not a PNG", name)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// rowJS is an expression for the list row of a torrent.
func rowJS(hash string) string {
	return fmt.Sprintf(`document.querySelector('#list tr[data-hash="%s"]')`, hash)
}

// TestChromiumUI drives the real web UI in headless Chromium: add a torrent
// by uploading the .torrent through the page's file input, watch it reach
// 100% from a local seeder (found through a shoal tracker), pause and resume
// it, open its swarm view while a second peer leeches from the daemon,
// check the page on a phone screen, and remove it. Screenshots go to
// $SHOAL_ARTIFACTS (or the test's temp folder).
func TestChromiumUI(t *testing.T) {
	b := newBrowser(t)
	// The seeder's upload limit stretches the download over a few seconds,
	// so the page shows it in progress.
	s := newSwarm(t, 4<<20, "--upload-limit", "1M")
	h, _ := infoHash(t, s.torrent)
	data := t.TempDir()
	d := startDaemon(t, data)

	b.do("open the UI", chromedp.Navigate(d.url+"/"))
	b.waitJS("the event stream", 15*time.Second, `document.querySelector('#totals').textContent.startsWith('0 torrents')`, `document.body.innerText`)
	b.shot("empty")

	// Add: upload the .torrent through the file input and press Add.
	b.do("choose the .torrent", chromedp.SetUploadFiles(chromedp.CSS("#add-file"), []string{s.torrent}))
	b.click("#add-btn")
	b.waitJS("the add message", 10*time.Second, `document.querySelector('#add-msg').textContent === 'added `+h+`'`, `document.querySelector('#add-msg').textContent`)
	if v := eval[string](b, `document.querySelector('#add-file').value`); v != "" {
		t.Errorf("file input not cleared after adding: %q", v)
	}
	b.waitJS("the torrent's row", 10*time.Second, rowJS(h)+` !== null`, `document.querySelector('#list').innerText`)
	if l := d.list(t); len(l) != 1 || l[0].Hash != h {
		t.Fatalf("the API lists %+v after adding through the page", l)
	}

	// While it downloads: a partial progress bar, and the peers tab.
	b.waitJS("download in progress", 30*time.Second, `(() => { const r = `+rowJS(h)+`; return r && r.dataset.state === 'downloading' && +r.dataset.progress > 0.05 && +r.dataset.progress < 0.9; })()`, rowJS(h)+`?.outerHTML ?? 'no row'`)
	b.shot("downloading")
	b.click(`#list tr[data-hash="` + h + `"] .name`)
	b.waitJS("the detail panel", 5*time.Second, `!document.querySelector('#detail').hidden && document.querySelector('#d-name').textContent.includes('`+s.name+`')`, `document.querySelector('#detail').outerHTML`)
	b.click(`button[data-tab="peers"]`)
	b.waitJS("the seeder in the peers tab", 10*time.Second, `[...document.querySelectorAll('#tab-peers td')].some(td => td.textContent.startsWith('127.0.0.1:'))`, `document.querySelector('#tab-peers').innerText`)
	b.shot("peers")

	// 100%.
	b.waitJS("100%", 60*time.Second, `(() => { const r = `+rowJS(h)+`; return r && r.dataset.state === 'seeding' && r.dataset.progress === '1' && r.innerText.includes('100.0%'); })()`, rowJS(h)+`?.outerHTML ?? 'no row'`)
	got, err := os.ReadFile(filepath.Join(data, s.name))
	if err != nil || string(got) != string(s.data) {
		t.Fatalf("downloaded file differs from the seeder's (err %v)", err)
	}
	b.shot("complete")

	// Pause, then resume, with the row's buttons; the DOM and the API agree.
	b.click(`#list tr[data-hash="` + h + `"] button[data-act="stop"]`)
	b.waitJS("paused in the page", 10*time.Second, rowJS(h)+`?.dataset.state === 'stopped' && `+rowJS(h)+`.querySelector('button[data-act="start"]') !== null`, rowJS(h)+`?.outerHTML ?? 'no row'`)
	d.waitFor(t, h, "stopped in the API", 5*time.Second, func(v tview) bool { return v.State == "stopped" })
	b.shot("paused")
	b.click(`#list tr[data-hash="` + h + `"] button[data-act="start"]`)
	b.waitJS("seeding again in the page", 20*time.Second, rowJS(h)+`?.dataset.state === 'seeding' && `+rowJS(h)+`.querySelector('button[data-act="stop"]') !== null`, rowJS(h)+`?.outerHTML ?? 'no row'`)
	d.waitFor(t, h, "seeding in the API", 5*time.Second, func(v tview) bool { return v.State == "seeding" && v.Progress == 1 })

	// A leecher joins through the tracker; the daemon unchokes it and the
	// swarm view draws the round.
	lp := freePort(t)
	start(t, "get", "--listen", "127.0.0.1:"+strconv.Itoa(lp), "--no-dht", "--download-limit", "256K", "-o", t.TempDir(), s.torrent)
	b.click("#swarm-tab")
	b.waitJS("a round with the leecher in the swarm view", 30*time.Second, `(() => {
		const svg = document.querySelector('#swarm-svg'); if (!svg) return false;
		const m = svg.querySelector('text').textContent.match(/^(\d+) rounds?, (\d+) peers?/);
		return m && +m[1] >= 1 && +m[2] >= 1 && svg.querySelectorAll('rect.cell-up[fill="#2a7"], rect.cell-up[fill="#c80"]').length >= 1 &&
			[...svg.querySelectorAll('text')].some(t => t.textContent.startsWith('127.0.0.1:'));
	})()`, `document.querySelector('#swarm').innerHTML || 'empty swarm view'`)
	// The API agrees: a round in which we unchoked the leecher.
	var sw struct {
		Rounds []struct {
			Peers []struct {
				Addr      string `json:"addr"`
				AmChoking bool   `json:"am_choking"`
			} `json:"peers"`
		} `json:"rounds"`
	}
	if err := d.getJSON("/api/torrents/"+h+"/swarm", &sw); err != nil {
		t.Fatal(err)
	}
	unchoked := false
	for _, r := range sw.Rounds {
		for _, p := range r.Peers {
			// The seeder left (both seeds), so the peer is the leecher.
			unchoked = unchoked || (strings.HasPrefix(p.Addr, "127.0.0.1:") && !p.AmChoking)
		}
	}
	if !unchoked {
		t.Errorf("the API's swarm has no round unchoking the leecher: %+v", sw)
	}
	b.shot("swarm")

	// A phone screen: nothing wider than the viewport.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	time.Sleep(300 * time.Millisecond) // a layout pass and a list update
	b.shot("phone")
	if w := eval[string](b, `document.documentElement.scrollWidth + ' <= ' + window.innerWidth`); !fitsWidth(w) {
		t.Errorf("on a 390 px wide phone screen the page scrolls sideways: scrollWidth %s", w)
	}
	b.click(`#swarm-tab`)
	if w := eval[string](b, `document.documentElement.scrollWidth + ' <= ' + window.innerWidth`); !fitsWidth(w) {
		t.Errorf("on a phone, the swarm view makes the page scroll sideways: scrollWidth %s", w)
	}
	b.do("desktop viewport", chromedp.EmulateViewport(1100, 900))

	// Remove (keeping the data).
	b.click(`#list tr[data-hash="` + h + `"] button[data-act="remove"]`)
	b.waitJS("the row gone", 10*time.Second, rowJS(h)+` === null && document.querySelector('#detail').hidden`, `document.querySelector('#list').innerText`)
	if l := d.list(t); len(l) != 0 {
		t.Fatalf("the API still lists %+v after removing through the page", l)
	}
	if _, err := os.Stat(filepath.Join(data, s.name)); err != nil {
		t.Errorf("remove (without data) deleted the file: %v", err)
	}
	b.shot("removed")
}

// fitsWidth parses "A <= B" and reports A <= B.
func fitsWidth(s string) bool {
	a, bs, ok := strings.Cut(s, " <= ")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(bs)
	return ok && err1 == nil && err2 == nil && x <= y
}
