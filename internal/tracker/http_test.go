package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// bstr bencodes a byte string.
func bstr(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }

func compact4(t *testing.T, peers ...string) string {
	t.Helper()
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As4()
		b = append(b, a[:]...)
		b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	}
	return string(b)
}

func compact6(t *testing.T, peers ...string) string {
	t.Helper()
	var b []byte
	for _, p := range peers {
		ap := netip.MustParseAddrPort(p)
		a := ap.Addr().As16()
		b = append(b, a[:]...)
		b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	}
	return string(b)
}

func testRequest() AnnounceRequest {
	var r AnnounceRequest
	// every kind of byte: unreserved, reserved, space, %, NUL, high bytes
	copy(r.InfoHash[:], []byte{0x00, 0xff, ' ', '%', '&', '+', '~', 'a', 'Z', '9', '-', '.', '_', '=', '?', '/', 0x80, 0x7f, '#', 0x01})
	copy(r.PeerID[:], "-SH0001-\x00\x01\xfeabcdefghi")
	r.Port = 6881
	r.Uploaded, r.Downloaded, r.Left = 10, 20, 30
	r.Event = Started
	r.NumWant = 50
	r.Key = 0xDEADBEEF
	return r
}

func TestAnnounceQueryEncoding(t *testing.T) {
	req := testRequest()
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		if ua := r.Header.Get("User-Agent"); ua != "test-agent" {
			t.Errorf("User-Agent = %q", ua)
		}
		fmt.Fprint(w, "d8:intervali900e5:peers0:e")
	}))
	defer srv.Close()
	c := &Client{UserAgent: "test-agent"}
	if _, err := c.Announce(context.Background(), srv.URL+"/announce?passkey=s3cr%2Ft", req); err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(gotQuery)
	if err != nil {
		t.Fatalf("query %q: %v", gotQuery, err)
	}
	want := map[string]string{
		"passkey": "s3cr/t", "info_hash": string(req.InfoHash[:]), "peer_id": string(req.PeerID[:]),
		"port": "6881", "uploaded": "10", "downloaded": "20", "left": "30", "compact": "1",
		"event": "started", "numwant": "50", "key": "DEADBEEF",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(gotQuery, "passkey=s3cr%2Ft&") {
		t.Errorf("existing query not kept verbatim first: %q", gotQuery)
	}
	// every non-unreserved byte is %XX: no raw '+', ' ' or high bytes
	ih := gotQuery[strings.Index(gotQuery, "info_hash=")+len("info_hash="):]
	ih = ih[:strings.IndexByte(ih, '&')]
	if wantIH := "%00%FF%20%25%26%2B~aZ9-._%3D%3F%2F%80%7F%23%01"; ih != wantIH {
		t.Errorf("info_hash encoded %q, want %q", ih, wantIH)
	}

	// None event and default numwant are omitted; negative left is "unknown"
	req.Event, req.NumWant, req.Left = None, -1, -1
	if _, err := c.Announce(context.Background(), srv.URL+"/announce", req); err != nil {
		t.Fatal(err)
	}
	q, _ = url.ParseQuery(gotQuery)
	if q.Has("event") || q.Has("numwant") || q.Has("passkey") {
		t.Errorf("unexpected params in %q", gotQuery)
	}
	if q.Get("left") != fmt.Sprint(UnknownLeft) {
		t.Errorf("left = %q for unknown size", q.Get("left"))
	}
}

func TestHTTPAnnounceEndToEnd(t *testing.T) {
	body := "d8:completei5e10:incompletei7e8:intervali1800e12:min intervali60e" +
		"5:peers" + bstr(compact4(t, "10.0.0.1:6881", "10.0.0.2:51413")) +
		"6:peers6" + bstr(compact6(t, "[2001:db8::1]:6881")) +
		"10:tracker id3:abc15:warning message10:be carefule"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/announce" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	var c Client
	resp, err := c.Announce(context.Background(), srv.URL+"/announce", testRequest())
	if err != nil {
		t.Fatal(err)
	}
	wantPeers := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:6881"), netip.MustParseAddrPort("10.0.0.2:51413"),
		netip.MustParseAddrPort("[2001:db8::1]:6881"),
	}
	if fmt.Sprint(resp.Peers) != fmt.Sprint(wantPeers) {
		t.Errorf("peers = %v, want %v", resp.Peers, wantPeers)
	}
	if resp.Seeders != 5 || resp.Leechers != 7 || resp.Interval != 30*time.Minute ||
		resp.MinInterval != time.Minute || resp.TrackerID != "abc" || resp.Warning != "be careful" {
		t.Errorf("resp = %+v", resp)
	}
}

func TestParseHTTPResponse(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		peers     string // fmt.Sprint of the peers, if no error
		interval  time.Duration
		seeders   int
		wantErr   string
		wantFail  string
		wantWarn  string
		wantMinIv time.Duration
	}{
		{name: "compact", body: "d8:intervali120e5:peers" + bstr(compact4(t, "1.2.3.4:80")) + "e",
			peers: "[1.2.3.4:80]", interval: 2 * time.Minute, seeders: -1},
		{name: "dict form", body: "d8:intervali120e5:peersld2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti80eed2:ip3:::14:porti6881eed2:ip11:example.com4:porti1eed2:ip7:5.6.7.84:porti0eed4:porti1eeee",
			peers: "[1.2.3.4:80 [::1]:6881]", interval: 2 * time.Minute, seeders: -1},
		{name: "dict form out of order keys", body: "d5:peersld4:porti80e2:ip7:1.2.3.4ee8:intervali120ee",
			peers: "[1.2.3.4:80]", interval: 2 * time.Minute, seeders: -1},
		{name: "peers6 only", body: "d8:intervali60e6:peers6" + bstr(compact6(t, "[::ffff:1.2.3.4]:9", "[2001:db8::2]:10")) + "e",
			peers: "[1.2.3.4:9 [2001:db8::2]:10]", interval: time.Minute, seeders: -1},
		{name: "duplicates and junk dropped", body: "d8:intervali60e5:peers" + bstr(compact4(t, "1.2.3.4:80", "1.2.3.4:80", "0.0.0.0:80", "1.2.3.5:0")) + "e",
			peers: "[1.2.3.4:80]", interval: time.Minute, seeders: -1},
		{name: "no peers", body: "d8:intervali60e8:completei3ee", peers: "[]", interval: time.Minute, seeders: 3},
		{name: "interval zero uses default", body: "d8:intervali0e5:peers0:e", peers: "[]", interval: DefaultAnnounceInterval, seeders: -1},
		{name: "interval absent", body: "d5:peers0:e", peers: "[]", interval: DefaultAnnounceInterval, seeders: -1},
		{name: "interval tiny clamped", body: "d8:intervali1e5:peers0:e", peers: "[]", interval: MinAnnounceInterval, seeders: -1},
		{name: "interval huge clamped", body: "d8:intervali99999999999e5:peers0:e", peers: "[]", interval: MaxAnnounceInterval, seeders: -1},
		{name: "min interval raises interval", body: "d8:intervali60e12:min intervali600e5:peers0:e", peers: "[]",
			interval: 10 * time.Minute, wantMinIv: 10 * time.Minute, seeders: -1},
		{name: "warning", body: "d8:intervali60e5:peers0:15:warning message4:hmm!e", peers: "[]",
			interval: time.Minute, seeders: -1, wantWarn: "hmm!"},
		{name: "negative count unknown", body: "d8:completei-4e8:intervali60e5:peers0:e", peers: "[]", interval: time.Minute, seeders: -1},
		{name: "wrong type count ignored", body: "d8:complete2:xx8:intervali60e5:peers0:e", peers: "[]", interval: time.Minute, seeders: -1},
		{name: "trailing newline ok", body: "d8:intervali60e5:peers0:e\r\n", peers: "[]", interval: time.Minute, seeders: -1},

		{name: "failure", body: "d14:failure reason17:torrent not founde", wantFail: "torrent not found"},
		{name: "odd compact", body: "d8:intervali60e5:peers7:abcdefge", wantErr: "not a multiple of 6"},
		{name: "odd compact6", body: "d8:intervali60e6:peers67:abcdefge", wantErr: "not a multiple of 18"},
		{name: "peers6 wrong type", body: "d6:peers6i3ee", wantErr: "peers6"},
		{name: "peers wrong type", body: "d5:peersi3ee", wantErr: "neither"},
		{name: "html", body: "<html>nope</html>", wantErr: "not a bencoded dictionary"},
		{name: "empty", body: "", wantErr: "empty"},
		{name: "truncated", body: "d8:intervali60e5:peers", wantErr: "not valid bencode"},
		{name: "trailing garbage", body: "d5:peers0:exyz", wantErr: "trailing"},
		{name: "list top level", body: "le", wantErr: "not a bencoded dictionary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHTTPResponse([]byte(tt.body))
			if tt.wantFail != "" {
				var fe *FailureError
				if !errors.As(err, &fe) || fe.Reason != tt.wantFail {
					t.Fatalf("err = %v, want failure %q", err, tt.wantFail)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(r.Peers); got != tt.peers {
				t.Errorf("peers = %s, want %s", got, tt.peers)
			}
			if r.Interval != tt.interval || r.MinInterval != tt.wantMinIv || r.Seeders != tt.seeders || r.Warning != tt.wantWarn {
				t.Errorf("got interval %v min %v seeders %d warning %q", r.Interval, r.MinInterval, r.Seeders, r.Warning)
			}
		})
	}
}

func TestPeersCapped(t *testing.T) {
	var b []byte
	for i := range MaxPeers + 500 {
		b = append(b, 10, byte(i>>16), byte(i>>8), byte(i), 0x1a, 0xe1)
	}
	r, err := parseHTTPResponse([]byte("d5:peers" + bstr(string(b)) + "e"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Peers) != MaxPeers {
		t.Fatalf("%d peers, want cap %d", len(r.Peers), MaxPeers)
	}
}

func TestHTTPErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/failure400", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "d14:failure reason11:bad passkeye")
	})
	mux.HandleFunc("/status500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	mux.HandleFunc("/oversize", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "d5:peers%d:", MaxBodySize)
		w.Write(make([]byte, MaxBodySize))
		fmt.Fprint(w, "e")
	})
	mux.HandleFunc("/redirect/announce", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/real/announce?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("/real/announce", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("compact") != "1" {
			http.Error(w, "query lost", 400)
			return
		}
		fmt.Fprint(w, "d8:intervali60e5:peers"+bstr(compact4(t, "1.1.1.1:1"))+"e")
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://127.0.0.1/x", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var c Client
	ctx := context.Background()

	_, err := c.Announce(ctx, srv.URL+"/failure400", testRequest())
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Reason != "bad passkey" {
		t.Errorf("failure with 400: %v", err)
	}
	if _, err := c.Announce(ctx, srv.URL+"/status500", testRequest()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("status 500: %v", err)
	}
	if _, err := c.Announce(ctx, srv.URL+"/oversize", testRequest()); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversize: %v", err)
	}
	r, err := c.Announce(ctx, srv.URL+"/redirect/announce", testRequest())
	if err != nil || len(r.Peers) != 1 {
		t.Errorf("redirect: %v %v", r, err)
	}
	if _, err := c.Announce(ctx, srv.URL+"/loop", testRequest()); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("redirect loop: %v", err)
	}
	if _, err := c.Announce(ctx, srv.URL+"/ftp", testRequest()); err == nil || !strings.Contains(err.Error(), "unsupported scheme") {
		t.Errorf("redirect to ftp: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Announce(tctx, srv.URL+"/slow", testRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow tracker with ctx deadline: %v", err)
	}
	if _, err := c.Announce(ctx, "wss://127.0.0.1/announce", testRequest()); !errors.Is(err, ErrUnsupportedScheme) {
		t.Errorf("wss: %v", err)
	}
	// error text never shows the passkey
	_, err = c.Announce(ctx, srv.URL+"/status500?passkey=SECRET", testRequest())
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks passkey or is nil: %v", err)
	}
}

func TestScrapeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://t.example/announce", "http://t.example/scrape"},
		{"http://t.example/x/announce", "http://t.example/x/scrape"},
		{"http://t.example/announce.php", "http://t.example/scrape.php"},
		{"http://t.example/announce?passkey=1", "http://t.example/scrape?passkey=1"},
		{"http://t.example/x%20y/announce", "http://t.example/x%20y/scrape"},
		{"http://t.example/a", ""},
		{"http://t.example/announce/x", ""},
		{"http://t.example/x/Announce", ""},
		{"http://t.example", ""},
	}
	for _, tt := range tests {
		got, err := ScrapeURL(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrScrapeUnsupported) {
				t.Errorf("ScrapeURL(%q) = %q, %v; want ErrScrapeUnsupported", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ScrapeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHTTPScrape(t *testing.T) {
	h1, h2, h3 := [20]byte{1, '&', 0xff}, [20]byte{2}, [20]byte{3}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/t/scrape" || r.URL.Query().Get("passkey") != "k" {
			http.NotFound(w, r)
			return
		}
		got := r.URL.Query()["info_hash"]
		if len(got) != 3 || got[0] != string(h1[:]) || got[1] != string(h2[:]) {
			http.Error(w, "bad hashes", 400)
			return
		}
		fmt.Fprint(w, "d5:filesd"+bstr(string(h1[:]))+"d8:completei4e10:downloadedi9e10:incompletei2ee"+
			bstr(string(h2[:]))+"d8:completei1ee"+bstr(strings.Repeat("\x09", 20))+"d8:completei1eeee")
	}))
	defer srv.Close()
	var c Client
	res, err := c.Scrape(context.Background(), srv.URL+"/t/announce?passkey=k", h1, h2, h3)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[20]byte]ScrapeResult{h1: {Seeders: 4, Leechers: 2, Completed: 9}, h2: {Seeders: 1, Leechers: -1, Completed: -1}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("scrape = %v, want %v", res, want)
	}
	if _, err := c.Scrape(context.Background(), srv.URL+"/t/tracker", h1); !errors.Is(err, ErrScrapeUnsupported) {
		t.Errorf("no announce in path: %v", err)
	}
}
