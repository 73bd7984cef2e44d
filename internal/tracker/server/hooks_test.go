package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// TestHooks: OnAnnounce sees every accepted announce with the announcer's
// address and the counts after it, refused announces are not reported, and
// Config.Catalog answers /search and /upload (and nothing else).
func TestHooks(t *testing.T) {
	type call struct {
		ih                InfoHash
		addr              netip.AddrPort
		seeders, leechers int
	}
	var mu sync.Mutex
	var calls []call
	catalog := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("catalog " + r.URL.Path)) })
	tr, _ := newTestTracker(t, Config{
		Catalog: catalog,
		OnAnnounce: func(ih InfoHash, addr netip.AddrPort, s, l int) {
			mu.Lock()
			calls = append(calls, call{ih, addr, s, l})
			mu.Unlock()
		},
	})
	h := NewHTTPHandler(tr)
	httpAnnounce(t, h, "127.0.0.1:1111", announceQuery(ihA, 6881, "event=started"))
	httpAnnounce(t, h, "127.0.0.2:1111", strings.Replace(announceQuery(ihA, 6882, ""), "left=100", "left=0", 1))
	if r := httpAnnounce(t, h, "127.0.0.3:1111", announceQuery(ihA, 0, "")); r.Failure == "" {
		t.Fatal("port 0 accepted")
	}
	want := []call{
		{ihA, netip.MustParseAddrPort("127.0.0.1:6881"), 0, 1},
		{ihA, netip.MustParseAddrPort("127.0.0.2:6882"), 1, 1},
	}
	if len(calls) != len(want) {
		t.Fatalf("OnAnnounce calls %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %+v, want %+v", i, calls[i], want[i])
		}
	}
	for _, p := range []string{"/search?q=x", "/search/", "/upload"} {
		if got := string(doHTTP(t, h, "127.0.0.1:1", p)); got[:8] != "catalog " {
			t.Errorf("GET %s = %q, want the catalog", p, got)
		}
	}
	plain := NewHTTPHandler(func() *Tracker { tr, _ := newTestTracker(t, Config{}); return tr }())
	w := httptest.NewRecorder()
	plain.ServeHTTP(w, httptest.NewRequest("GET", "/search?q=x", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("/search without a catalog: status %d, want 404", w.Code)
	}
}
