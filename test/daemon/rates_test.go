package daemon

import (
	"os"
	"testing"
	"time"
)

// TestLiveSpeedLimits changes speed limits while a torrent downloads from
// a seeder that sends at most 2 MB/s: first the global limit with
// transmission-remote -d (session-set), then the torrent's own through the
// JSON API, and checks each time that, over the next few seconds, the
// download gets no more than the limit allows plus what was already in
// flight (unlimited it would get about 8 MB). Only upper bounds on bytes
// are asserted, so a slow machine cannot fail it.
func TestLiveSpeedLimits(t *testing.T) {
	const (
		limit  = 100_000 // bytes/s
		window = 4 * time.Second
		slack  = 3 << 20 // requests in flight and the limiter's burst
	)
	s := newSwarm(t, 12<<20, "--upload-limit", "2M")
	h, _ := infoHash(t, s.torrent)
	d := startDaemon(t, t.TempDir())
	raw := readFile(t, s.torrent)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw}); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	v := d.waitFor(t, h, "downloading", 30*time.Second, func(v tview) bool { return v.Downloaded > 0 })
	measure := func(what string) {
		t.Helper()
		a := d.waitFor(t, h, "listed", time.Second, func(tview) bool { return true })
		time.Sleep(window)
		b := d.waitFor(t, h, "listed", time.Second, func(tview) bool { return true })
		got := b.Downloaded - a.Downloaded
		t.Logf("%s: %d bytes in %s", what, got, window)
		if max := int64(limit*window.Seconds()) + slack; got > max || b.Progress == 1 {
			t.Fatalf("%s: %d bytes in %s (limit allows about %d), progress %.2f", what, got, window, max, b.Progress)
		}
	}

	trRemote(t, d.ui, "-d", itoa(limit/1000))
	var sess struct {
		Down   int64 `json:"speed-limit-down"`
		DownOn bool  `json:"speed-limit-down-enabled"`
	}
	rpcCall(t, d, "session-get", nil, &sess)
	if sess.Down != limit/1000 || !sess.DownOn {
		t.Fatalf("session-get after -d: %+v", sess)
	}
	measure("global limit")

	if code, body := d.do("PATCH", "/api/torrents/"+h, map[string]any{"down_limit": limit}); code != 200 {
		t.Fatalf("set limit: %d %s", code, body)
	}
	trRemote(t, d.ui, "-D")
	if tg := rpcTorrent(t, d, v.ID, "downloadLimit", "downloadLimited"); tg.DownloadLimit != limit/1000 || !tg.DownLimited {
		t.Fatalf("torrent-get downloadLimit: %+v", tg)
	}
	measure("torrent limit")

	// Lifted (through the RPC): the rest arrives.
	rpcCall(t, d, "torrent-set", map[string]any{"ids": []int{v.ID}, "downloadLimited": false}, nil)
	d.waitFor(t, h, "100% once unlimited", 60*time.Second, func(v tview) bool { return v.Progress == 1 })
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
