package tracker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNewTiers(t *testing.T) {
	tests := []struct {
		name     string
		announce string
		list     [][]string
		want     string
	}{
		{"announce only", "http://a/announce", nil, "[[http://a/announce]]"},
		{"list wins over announce", "http://a/announce", [][]string{{"udp://b:1"}, {"https://c/announce"}},
			"[[udp://b:1] [https://c/announce]]"},
		{"unsupported and duplicates dropped", "", [][]string{
			{"wss://x/announce", "http://a/announce", " http://a/announce ", "dht://abc", "not a url"},
			{}, {"http://a/announce"}, {"udp://b:1", "udp:///nohost"}},
			"[[http://a/announce] [udp://b:1]]"},
		{"list with nothing usable falls back", "udp://t:80", [][]string{{"wss://x"}}, "[[udp://t:80]]"},
		{"nothing at all", "magnet:?xt=1", nil, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTiers(tt.announce, tt.list, nil)
			if got := fmt.Sprint(tr.Tiers()); got != tt.want {
				t.Errorf("tiers = %s, want %s", got, tt.want)
			}
			if got, want := fmt.Sprint(tr.URLs()), strings.NewReplacer("] [", " ", "[[", "[", "]]", "]").Replace(tt.want); got != want {
				t.Errorf("URLs = %s, want %s", got, want)
			}
		})
	}
}

func TestNewTiersShufflesWithinTiers(t *testing.T) {
	tier1 := []string{"http://a/1", "http://a/2", "http://a/3", "http://a/4", "http://a/5"}
	tier2 := []string{"udp://b:1", "udp://b:2", "udp://b:3"}
	list := [][]string{slices.Clone(tier1), slices.Clone(tier2)}
	moved := false
	for seed := range uint64(20) {
		tr := NewTiers("", list, rand.New(rand.NewPCG(seed, 1)))
		got := tr.Tiers()
		if len(got) != 2 {
			t.Fatalf("seed %d: %v", seed, got)
		}
		for i, want := range [][]string{tier1, tier2} {
			s := slices.Sorted(slices.Values(got[i]))
			if !slices.Equal(s, want) {
				t.Fatalf("seed %d tier %d = %v, not a permutation of %v", seed, i, got[i], want)
			}
		}
		if !slices.Equal(got[0], tier1) {
			moved = true
		}
	}
	if !moved {
		t.Error("20 seeds never changed the order of a 5-tracker tier")
	}
	if !slices.Equal(list[0], tier1) {
		t.Error("NewTiers modified the caller's announce-list")
	}
}

func TestTiersAnnounce(t *testing.T) {
	var mu sync.Mutex
	healthy := map[string]bool{"/a1/announce": false, "/a2/announce": true, "/b1/announce": true}
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, r.URL.Path)
		if !healthy[r.URL.Path] {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "d8:intervali60e5:peers0:e")
	}))
	defer srv.Close()
	set := func(path string, ok bool) { mu.Lock(); healthy[path] = ok; mu.Unlock() }
	takeHits := func() string { mu.Lock(); defer mu.Unlock(); h := fmt.Sprint(hits); hits = nil; return h }

	a1, a2, b1 := srv.URL+"/a1/announce", srv.URL+"/a2/announce", srv.URL+"/b1/announce"
	tr := NewTiers("", [][]string{{a1, a2}, {b1}}, nil)
	var c Client
	ctx := context.Background()

	_, used, err := tr.Announce(ctx, &c, testRequest())
	if err != nil || used != a2 {
		t.Fatalf("used %q, err %v; want %q", used, err, a2)
	}
	if h := takeHits(); h != "[/a1/announce /a2/announce]" {
		t.Errorf("tried %s", h)
	}
	if got := fmt.Sprint(tr.Tiers()); got != fmt.Sprint([][]string{{a2, a1}, {b1}}) {
		t.Errorf("after promotion: %s", got)
	}

	// first tier all down: second tier answers; tier 1 order kept
	set("/a2/announce", false)
	_, used, err = tr.Announce(ctx, &c, testRequest())
	if err != nil || used != b1 {
		t.Fatalf("used %q, err %v; want %q", used, err, b1)
	}
	if h := takeHits(); h != "[/a2/announce /a1/announce /b1/announce]" {
		t.Errorf("tried %s", h)
	}
	if got := fmt.Sprint(tr.Tiers()); got != fmt.Sprint([][]string{{a2, a1}, {b1}}) {
		t.Errorf("after fallback: %s", got)
	}

	// all down: last error
	set("/b1/announce", false)
	_, _, err = tr.Announce(ctx, &c, testRequest())
	if err == nil || !strings.Contains(err.Error(), "/b1/announce") {
		t.Errorf("all down: err = %v, want the last tracker's error", err)
	}

	// cancelled context stops before trying anything
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	takeHits()
	if _, _, err := tr.Announce(cctx, &c, testRequest()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if h := takeHits(); h != "[]" {
		t.Errorf("cancelled ctx still tried %s", h)
	}

	if _, _, err := NewTiers("", nil, nil).Announce(ctx, &c, testRequest()); !errors.Is(err, ErrNoTrackers) {
		t.Errorf("empty tiers: %v", err)
	}
}
