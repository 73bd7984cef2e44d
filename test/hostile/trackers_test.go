package hostile

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// trackerCase is one hostile tracker. HTTP handlers get the hit counter.
type trackerCase struct {
	Name string
	HTTP func(hits *atomic.Int64) http.HandlerFunc // nil for UDP cases
	UDP  func(pc net.PacketConn, from net.Addr, req []byte) [][]byte
}

func httpTrackerCases() []trackerCase {
	body := func(s string) func(*atomic.Int64) http.HandlerFunc {
		return func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { hits.Add(1); _, _ = w.Write([]byte(s)) }
		}
	}
	million := "d8:intervali1800e5:peers" + fmt.Sprint(6_000_000) + ":" + strings.Repeat("\x7f\x00\x00\x01\x00\x01", 1_000_000) + "e"
	return []trackerCase{
		{Name: "garbage body", HTTP: body("\x00\xffthis is not bencode")},
		{Name: "HTML error page", HTTP: body("<html><body>502 Bad Gateway</body></html>")},
		{Name: "odd-length compact peers", HTTP: body("d8:intervali1800e5:peers7:\x7f\x00\x00\x01\x1a\x0a\x00e")},
		{Name: "odd-length compact peers6", HTTP: body("d8:intervali1800e5:peers0:6:peers619:0123456789012345678e")},
		{Name: "a million peers (6 MB)", HTTP: body(million)},
		{Name: "interval 0", HTTP: body("d8:intervali0e5:peers0:e")},
		{Name: "interval -1", HTTP: body("d8:intervali-1e5:peers0:e")},
		{Name: "failure reason", HTTP: body("d14:failure reason12:go away, nowe")},
		{Name: "peers dict list with bad entries", HTTP: body("d8:intervali1800e5:peersld2:ip9:999.1.1.14:porti70000eed2:ipi5e4:port3:abcee")},
		{Name: "deeply nested body", HTTP: body(strings.Repeat("l", 50000) + strings.Repeat("e", 50000))},
		{Name: "HTTP 500", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { hits.Add(1); http.Error(w, "boom", 500) }
		}},
		{Name: "redirect loop", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Redirect(w, r, r.URL.String(), http.StatusFound)
			}
		}},
		{Name: "Content-Length lie", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Length", "1000000")
				_, _ = w.Write([]byte("d8:intervali1800e"))
			}
		}},
		{Name: "endless slow body (1 byte/s)", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for {
					if _, err := w.Write([]byte("l")); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(time.Second):
					}
				}
			}
		}},
		{Name: "endless fast body", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				chunk := []byte("d8:intervali1800e5:peers999999999999:" + strings.Repeat("x", 64<<10))
				for i := 0; i < 1<<14; i++ { // at most 1 GiB
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}
		}},
		{Name: "never answers", HTTP: func(hits *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				select {
				case <-r.Context().Done():
				case <-time.After(2 * time.Minute):
				}
			}
		}},
	}
}

func udpTrackerCases() []trackerCase {
	tid := func(req []byte) []byte { return req[12:16] }
	connectOK := func(req []byte) []byte {
		return append(append(u32s(0), tid(req)...), 1, 2, 3, 4, 5, 6, 7, 8)
	}
	// announce answers connect properly and the announce with fn.
	announce := func(fn func(req []byte) []byte) func(net.PacketConn, net.Addr, []byte) [][]byte {
		return func(_ net.PacketConn, _ net.Addr, req []byte) [][]byte {
			if len(req) < 16 {
				return nil
			}
			if binary.BigEndian.Uint32(req[8:12]) == 0 {
				return [][]byte{connectOK(req)}
			}
			return [][]byte{fn(req)}
		}
	}
	return []trackerCase{
		{Name: "UDP never answers", UDP: func(net.PacketConn, net.Addr, []byte) [][]byte { return nil }},
		{Name: "UDP garbage reply", UDP: func(_ net.PacketConn, _ net.Addr, req []byte) [][]byte { return [][]byte{detData(37, 3)} }},
		{Name: "UDP wrong transaction id", UDP: func(_ net.PacketConn, _ net.Addr, req []byte) [][]byte {
			return [][]byte{append(u32s(0, 0xdeadbeef), 1, 2, 3, 4, 5, 6, 7, 8)}
		}},
		{Name: "UDP 64 KiB reply", UDP: func(_ net.PacketConn, _ net.Addr, req []byte) [][]byte {
			if len(req) < 16 {
				return nil
			}
			return [][]byte{append(append(u32s(0), tid(req)...), make([]byte, 65000)...)}
		}},
		{Name: "UDP odd-length peers", UDP: announce(func(req []byte) []byte {
			return append(append(u32s(1), req[12:16]...), append(u32s(1800, 1, 1), 127, 0, 0, 1, 0x1a, 0x0a, 9)...)
		})},
		{Name: "UDP interval 0", UDP: announce(func(req []byte) []byte {
			return append(append(u32s(1), req[12:16]...), u32s(0, 0, 0)...)
		})},
		{Name: "UDP 10k peers", UDP: announce(func(req []byte) []byte {
			return append(append(append(u32s(1), req[12:16]...), u32s(1800, 0, 10000)...), []byte(strings.Repeat("\x7f\x00\x00\x01\x00\x01", 10000))[:60000]...)
		})},
		{Name: "UDP error reply", UDP: announce(func(req []byte) []byte {
			return append(append(u32s(3), req[12:16]...), "go away"...)
		})},
		{Name: "UDP truncated announce reply", UDP: announce(func(req []byte) []byte {
			return append(u32s(1), req[12:14]...)
		})},
	}
}

// TestHostileTrackers runs `shoal get` against each hostile tracker (its
// torrent's only announce URL) plus an honest seeder given with --peer: the
// download must complete and the process exit, within a bound, every time.
func TestHostileTrackers(t *testing.T) {
	t.Parallel()
	base := makeFixture(t, "tracked.bin", 2<<20+77, 64<<10, "")
	seeder := clients.StartShoalSeeder(t, base.Torrent, base.DataDir)
	if err := clients.WaitListening(seeder.Addr.String(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cases := append(httpTrackerCases(), udpTrackerCases()...)
	var mu sync.Mutex
	var results []string
	completed := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for _, tc := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var hits atomic.Int64
			var url string
			if tc.HTTP != nil {
				srv := httptest.NewServer(tc.HTTP(&hits))
				defer func() { srv.CloseClientConnections(); srv.Close() }()
				url = srv.URL + "/announce"
			} else {
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Error(err)
					return
				}
				defer pc.Close()
				go serveUDP(pc, &hits, tc.UDP)
				url = "udp://" + pc.LocalAddr().String() + "/announce"
			}
			torrent := filepath.Join(t.TempDir(), "t.torrent")
			if err := os.WriteFile(torrent, dict("announce", url, "info", base.Info), 0o644); err != nil {
				t.Error(err)
				return
			}
			out := t.TempDir()
			start := time.Now()
			// a download limit keeps the download going while the tracker answers
			_, stderr, err := runBounded(60*time.Second, clients.ShoalBinary(t), "get", "-o", out,
				"--listen", "127.0.0.1:0", "--no-dht", "--download-limit", "1M", "--peer", seeder.Addr.String(), torrent)
			took := time.Since(start).Round(100 * time.Millisecond)
			ok := err == nil && sameFile(filepath.Join(out, base.Name), base.Data) == nil
			if !ok {
				t.Errorf("%s: shoal get failed after %v: %v\n%s", tc.Name, took, err, tail(stderr, 1500))
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("%s: panic:\n%s", tc.Name, stderr)
			}
			if hits.Load() == 0 {
				t.Errorf("%s: the tracker was never contacted", tc.Name)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				completed++
			}
			results = append(results, fmt.Sprintf("%-34s completed=%v in %v, tracker hit %d times", tc.Name, ok, took, hits.Load()))
		}()
	}
	wg.Wait()
	for _, r := range results {
		t.Log(r)
	}
	record(t, "hostile trackers (HTTP+UDP)", len(cases),
		fmt.Sprintf("%d/%d downloads completed and exited (60 s bound); no hang, no crash", completed, len(cases)))
}

func serveUDP(pc net.PacketConn, hits *atomic.Int64, fn func(net.PacketConn, net.Addr, []byte) [][]byte) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		hits.Add(1)
		for _, r := range fn(pc, from, append([]byte(nil), buf[:n]...)) {
			_, _ = pc.WriteTo(r, from)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
