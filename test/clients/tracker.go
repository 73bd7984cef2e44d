package clients

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tracker is a running opentracker on 127.0.0.1. Port and AnnounceURL are
// static after start; the whitelist is guarded by mu.
type Tracker struct {
	Port        int
	AnnounceURL string // http://127.0.0.1:PORT/announce
	Proc        *Proc
	dir         string
	mu          sync.Mutex
}

// StartOpentracker starts opentracker on 127.0.0.1 (TCP and UDP) with the
// given info-hashes (hex) whitelisted; Debian's build serves only
// whitelisted torrents. As root it chroots to its directory and drops to
// user nobody, so that directory and the whitelist are world-readable.
func StartOpentracker(t testing.TB, infoHashes ...string) *Tracker {
	t.Helper()
	Require(t, Opentracker)
	// Not below t.TempDir(): its parents are mode 0700, and opentracker
	// reads the whitelist as user nobody.
	dir, err := os.MkdirTemp("", "shoal-opentracker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // registered first: runs after the process is stopped
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{Port: FreePort(t), dir: dir}
	tr.AnnounceURL = fmt.Sprintf("http://127.0.0.1:%d/announce", tr.Port)
	if err := tr.writeWhitelist(infoHashes); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listen.tcp_udp 127.0.0.1:%d\naccess.whitelist whitelist.txt\naccess.stats 127.0.0.1\ntracker.rootdir %s\ntracker.user nobody\n", tr.Port, dir)
	cpath := filepath.Join(dir, "opentracker.conf")
	if err := os.WriteFile(cpath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	tr.Proc = StartProc(t, "opentracker", "", nil, "opentracker", "-f", cpath)
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats?mode=peer", tr.Port)
	err = poll(10*time.Second, 100*time.Millisecond, func() bool {
		if tr.Proc.Exited() {
			return false
		}
		_, err := httpGet(statsURL)
		return err == nil
	})
	if err != nil {
		t.Fatalf("opentracker did not start on port %d", tr.Port)
	}
	return tr
}

func (tr *Tracker) writeWhitelist(add []string) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	path := filepath.Join(tr.dir, "whitelist.txt")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opentracker whitelist: %w", err)
	}
	for _, h := range add {
		if len(h) < 40 {
			f.Close()
			return fmt.Errorf("opentracker whitelist: bad info-hash %q", h)
		}
		fmt.Fprintln(f, strings.ToLower(h[:40]))
	}
	_ = os.Chmod(path, 0o644)
	return f.Close()
}

// Allow whitelists more info-hashes (hex) and makes opentracker reload the
// list (SIGHUP).
func (tr *Tracker) Allow(t testing.TB, infoHashes ...string) {
	t.Helper()
	if err := tr.writeWhitelist(infoHashes); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(tr.Proc.PID(), syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond) // opentracker reloads asynchronously
}

// ScrapeResult is one torrent's counts from a BEP 48 scrape.
type ScrapeResult struct {
	Complete, Incomplete, Downloaded int64
}

// Scrape asks the tracker at announceURL (its path must end in /announce)
// for one torrent's counts.
func Scrape(announceURL, infoHashHex string) (ScrapeResult, error) {
	ih, err := hex.DecodeString(infoHashHex)
	if err != nil || len(ih) != 20 {
		return ScrapeResult{}, fmt.Errorf("scrape: bad info-hash %q", infoHashHex)
	}
	i := strings.LastIndex(announceURL, "/announce")
	if i < 0 {
		return ScrapeResult{}, fmt.Errorf("scrape: %q has no /announce", announceURL)
	}
	u := announceURL[:i] + "/scrape" + announceURL[i+len("/announce"):]
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	body, err := httpGet(u + sep + "info_hash=" + percentEncode(ih))
	if err != nil {
		return ScrapeResult{}, err
	}
	d := &bdec{buf: body}
	v, err := d.value(1) // depth 1: do not record spans
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("scrape reply: %w", err)
	}
	top, _ := v.(map[string]any)
	files, _ := top["files"].(map[string]any)
	f, _ := files[string(ih)].(map[string]any)
	var r ScrapeResult
	r.Complete, _ = f["complete"].(int64)
	r.Incomplete, _ = f["incomplete"].(int64)
	r.Downloaded, _ = f["downloaded"].(int64)
	return r, nil
}

// WaitSeeders waits until the tracker reports at least n seeders.
func WaitSeeders(t testing.TB, announceURL, infoHashHex string, n int, timeout time.Duration) {
	t.Helper()
	waitScrape(t, announceURL, infoHashHex, timeout, "seeders", n, func(r ScrapeResult) int64 { return r.Complete })
}

// WaitLeechers waits until the tracker reports at least n leechers.
func WaitLeechers(t testing.TB, announceURL, infoHashHex string, n int, timeout time.Duration) {
	t.Helper()
	waitScrape(t, announceURL, infoHashHex, timeout, "leechers", n, func(r ScrapeResult) int64 { return r.Incomplete })
}

func waitScrape(t testing.TB, announceURL, ih string, timeout time.Duration, what string, n int, f func(ScrapeResult) int64) {
	t.Helper()
	var last ScrapeResult
	var lastErr error
	err := poll(timeout, 250*time.Millisecond, func() bool {
		last, lastErr = Scrape(announceURL, ih)
		return lastErr == nil && f(last) >= int64(n)
	})
	if err != nil {
		t.Fatalf("tracker never listed %d %s of %s in %v (last %+v, err %v)", n, what, ih, timeout, last, lastErr)
	}
}

// percentEncode escapes every byte except RFC 3986 unreserved characters
// (url.QueryEscape turns a 0x20 byte into "+", which trackers may not decode).
func percentEncode(b []byte) string {
	const hexd = "0123456789ABCDEF"
	var sb strings.Builder
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexd[c>>4])
		sb.WriteByte(hexd[c&15])
	}
	return sb.String()
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(u string) ([]byte, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET " + u + ": " + resp.Status)
	}
	return b, nil
}
