package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestTracker(t *testing.T, cfg Config) (*Tracker, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: confNow}
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	tr, err := New(newTestMemoryStore(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr, clk
}

type httpAnnounceResp struct {
	Failure     string             `bencode:"failure reason,omitempty"`
	Complete    int64              `bencode:"complete"`
	Downloaded  int64              `bencode:"downloaded"`
	Incomplete  int64              `bencode:"incomplete"`
	Interval    int64              `bencode:"interval"`
	MinInterval int64              `bencode:"min interval"`
	Peers       bencode.RawMessage `bencode:"peers"`
	Peers6      []byte             `bencode:"peers6,omitempty"`
}

func announceQuery(ih InfoHash, port int, extra string) string {
	q := "info_hash=" + url.QueryEscape(string(ih[:])) + "&peer_id=" + url.QueryEscape("-SH0001-abcdefghijkl") +
		fmt.Sprintf("&port=%d&uploaded=0&downloaded=0&left=100", port)
	if extra != "" {
		q += "&" + extra
	}
	return q
}

// doHTTP runs one request through h with the given source address and
// returns the body.
func doHTTP(t *testing.T, h http.Handler, from, path string) []byte {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = from
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != 200 {
		t.Fatalf("GET %s: status %d: %s", path, w.Code, body)
	}
	return body
}

func httpAnnounce(t *testing.T, h http.Handler, from string, q string) httpAnnounceResp {
	t.Helper()
	body := doHTTP(t, h, from, "/announce?"+q)
	var r httpAnnounceResp
	if err := bencode.UnmarshalLimits(body, &r, bencode.Limits{}); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return r
}

func TestHTTPAnnounceCompactAndDict(t *testing.T) {
	tr, _ := newTestTracker(t, Config{Interval: 10 * time.Second, MinInterval: 5 * time.Second})
	h := NewHTTPHandler(tr)
	r := httpAnnounce(t, h, "127.0.0.1:1111", announceQuery(ihA, 6881, "event=started"))
	if r.Failure != "" || r.Interval != 10 || r.MinInterval != 5 || r.Incomplete != 1 || string(r.Peers) != "0:" {
		t.Fatalf("first announce: %+v", r)
	}
	r = httpAnnounce(t, h, "127.0.0.2:2222", announceQuery(ihA, 6882, "compact=1"))
	want := "6:\x7f\x00\x00\x01\x1a\xe1" // 127.0.0.1:6881
	if string(r.Peers) != want || r.Incomplete != 2 {
		t.Fatalf("compact peers = %q (incomplete %d), want %q", r.Peers, r.Incomplete, want)
	}
	body := doHTTP(t, h, "127.0.0.2:2222", "/announce?"+announceQuery(ihA, 6882, "compact=0"))
	if !strings.Contains(string(body), "5:peersld2:ip9:127.0.0.14:porti6881eee") {
		t.Fatalf("dictionary form not found in %q", body)
	}
}

func TestHTTPPeers6(t *testing.T) {
	tr, _ := newTestTracker(t, Config{})
	h := NewHTTPHandler(tr)
	httpAnnounce(t, h, "[fd00::1]:1111", announceQuery(ihA, 6881, ""))
	r := httpAnnounce(t, h, "[fd00::2]:1111", announceQuery(ihA, 6882, ""))
	if string(r.Peers) != "0:" || len(r.Peers6) != 18 {
		t.Fatalf("IPv6 announce: peers %q peers6 %x", r.Peers, r.Peers6)
	}
	ap, _ := addrFromCompact(r.Peers6)
	if ap != netip.MustParseAddrPort("[fd00::1]:6881") {
		t.Fatalf("peers6 holds %v", ap)
	}
}

func TestHTTPScrapeAndEvents(t *testing.T) {
	tr, _ := newTestTracker(t, Config{})
	h := NewHTTPHandler(tr)
	httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, "event=started"))
	httpAnnounce(t, h, "127.0.0.2:1", announceQuery(ihA, 6882, "event=started"))
	httpAnnounce(t, h, "127.0.0.1:1", strings.Replace(announceQuery(ihA, 6881, "event=completed"), "left=100", "left=0", 1))
	httpAnnounce(t, h, "127.0.0.2:1", announceQuery(ihA, 6882, "event=stopped"))
	body := doHTTP(t, h, "127.0.0.3:1", "/scrape?info_hash="+url.QueryEscape(string(ihA[:]))+"&info_hash="+url.QueryEscape(string(ihB[:])))
	var sc struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Downloaded int `bencode:"downloaded"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &sc); err != nil {
		t.Fatalf("decode scrape %q: %v", body, err)
	}
	a, b := sc.Files[string(ihA[:])], sc.Files[string(ihB[:])]
	if a.Complete != 1 || a.Downloaded != 1 || a.Incomplete != 0 || b.Complete != 0 || len(sc.Files) != 2 {
		t.Fatalf("scrape = %+v", sc.Files)
	}
}

func TestHTTPPrivate(t *testing.T) {
	tr, _ := newTestTracker(t, Config{Allow: map[InfoHash]struct{}{ihA: {}}})
	h := NewHTTPHandler(tr)
	if r := httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, "")); r.Failure != "" {
		t.Fatalf("listed hash refused: %s", r.Failure)
	}
	r := httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihB, 6881, ""))
	if !strings.Contains(r.Failure, "not tracked") {
		t.Fatalf("unlisted hash: failure %q", r.Failure)
	}
	if tr.Metrics().Errors(ErrNotAllowed) != 1 {
		t.Fatalf("not_allowed errors = %d", tr.Metrics().Errors(ErrNotAllowed))
	}
}

func TestHTTPRateLimit(t *testing.T) {
	tr, clk := newTestTracker(t, Config{RateLimit: 1, RateBurst: 3})
	h := NewHTTPHandler(tr)
	for i := range 3 {
		if r := httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, "")); r.Failure != "" {
			t.Fatalf("announce %d refused: %s", i, r.Failure)
		}
	}
	if r := httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, "")); !strings.Contains(r.Failure, "rate limited") {
		t.Fatalf("4th announce in the same second: %+v", r)
	}
	// Another IP is not affected; after a second one more token is there.
	if r := httpAnnounce(t, h, "127.0.0.9:1", announceQuery(ihA, 6881, "")); r.Failure != "" {
		t.Fatalf("other IP refused: %s", r.Failure)
	}
	clk.Add(time.Second)
	if r := httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, "")); r.Failure != "" {
		t.Fatalf("after refill refused: %s", r.Failure)
	}
}

func TestHTTPHostile(t *testing.T) {
	tr, _ := newTestTracker(t, Config{MaxNumWant: 3})
	h := NewHTTPHandler(tr)
	for i := range 10 {
		httpAnnounce(t, h, fmt.Sprintf("127.0.0.%d:1", i+1), announceQuery(ihA, 6881, ""))
	}
	pid := "&peer_id=" + url.QueryEscape("-SH0001-abcdefghijkl")
	ih := "info_hash=" + url.QueryEscape(string(ihA[:]))
	cases := []struct{ name, query, want string }{
		{"short info_hash", "info_hash=abc" + pid + "&port=1&left=0", "info_hash"},
		{"long info_hash", "info_hash=" + strings.Repeat("a", 21) + pid + "&port=1&left=0", "info_hash"},
		{"two info_hashes", ih + "&" + ih + pid + "&port=1&left=0", "info_hash"},
		{"no info_hash", "port=1&left=0" + pid, "info_hash"},
		{"port 0", ih + pid + "&port=0&left=0", "port"},
		{"port too big", ih + pid + "&port=70000&left=0", "port"},
		{"negative left", ih + pid + "&port=1&left=-5", "left"},
		{"negative uploaded", ih + pid + "&port=1&left=0&uploaded=-1", "uploaded"},
		{"huge downloaded", ih + pid + "&port=1&left=0&downloaded=99999999999999999999", "downloaded"},
		{"bad numwant", ih + pid + "&port=1&left=0&numwant=lots", "numwant"},
		{"bad event", ih + pid + "&port=1&left=0&event=exploded", "event"},
		{"bad escape", ih + pid + "&port=1&left=0&x=%zz", "malformed"},
		{"short peer_id", ih + "&peer_id=x&port=1&left=0", "peer_id"},
		{"huge query", ih + pid + "&port=1&left=0&pad=" + strings.Repeat("x", maxQueryLen), "too long"},
	}
	for _, c := range cases {
		r := httpAnnounce(t, h, "127.0.0.200:1", c.query)
		if !strings.Contains(r.Failure, c.want) {
			t.Errorf("%s: failure %q, want it to mention %q", c.name, r.Failure, c.want)
		}
	}
	// Huge numwant is capped, not refused.
	r := httpAnnounce(t, h, "127.0.0.200:1", announceQuery(ihA, 6881, "numwant=999999999999"))
	if r.Failure != "" || len(r.Peers) != len("18:")+18 {
		t.Fatalf("huge numwant: %+v", r)
	}
	// Negative numwant means default.
	if r := httpAnnounce(t, h, "127.0.0.200:1", announceQuery(ihA, 6881, "numwant=-7")); r.Failure != "" {
		t.Fatalf("negative numwant refused: %s", r.Failure)
	}
	// Scrape abuse.
	many := strings.Repeat(ih+"&", MaxScrapeHashes+1)
	if body := doHTTP(t, h, "127.0.0.200:1", "/scrape?"+many); !strings.Contains(string(body), "too many") {
		t.Errorf("oversize scrape: %q", body)
	}
	if body := doHTTP(t, h, "127.0.0.200:1", "/scrape?info_hash=short"); !strings.Contains(string(body), "failure reason") {
		t.Errorf("bad scrape hash: %q", body)
	}
	if body := doHTTP(t, h, "127.0.0.200:1", "/scrape"); !strings.Contains(string(body), "failure reason") {
		t.Errorf("empty scrape: %q", body)
	}
	// Still serving, and the state was not touched by the refusals.
	r = httpAnnounce(t, h, "127.0.0.201:1", announceQuery(ihA, 6881, ""))
	if r.Failure != "" || r.Incomplete != 12 {
		t.Fatalf("after hostile requests: %+v", r)
	}
	if got := tr.Metrics().Errors(ErrMalformed); got < uint64(len(cases)) {
		t.Fatalf("malformed errors counted %d, want >= %d", got, len(cases))
	}
}

func TestHTTPMetricsAndStatus(t *testing.T) {
	tr, _ := newTestTracker(t, Config{})
	h := NewHTTPHandler(tr)
	httpAnnounce(t, h, "127.0.0.1:1", announceQuery(ihA, 6881, ""))
	httpAnnounce(t, h, "127.0.0.1:1", "info_hash=x")
	m := string(doHTTP(t, h, "127.0.0.1:1", "/metrics"))
	for _, want := range []string{
		`shoal_tracker_announces_total{proto="http"} 2`,
		`shoal_tracker_errors_total{kind="malformed"} 1`,
		`shoal_tracker_torrents 1`,
		`shoal_tracker_peers{role="leecher"} 1`,
		"# TYPE shoal_tracker_peers gauge",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if s := string(doHTTP(t, h, "127.0.0.1:1", "/")); !strings.Contains(s, "shoal tracker") || !strings.Contains(s, "<td>1</td>") {
		t.Errorf("status page: %s", s)
	}
}

func TestServeHTTPRealSocketAndShutdown(t *testing.T) {
	tr, _ := newTestTracker(t, Config{})
	ln, err := listenTCP(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeHTTP(ctx, ln, tr) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/announce?" + announceQuery(ihA, 6881, ""))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "8:intervali1800e") {
		t.Fatalf("real announce: %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not stop")
	}
}
