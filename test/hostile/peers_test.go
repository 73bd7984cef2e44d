package hostile

import (
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
	"github.com/shoal-p2p/shoal/test/clients"
)

// rssCapKiB is the memory a shoal process may use while under attack.
const rssCapKiB = 150 << 10

// dropBound is how long shoal may take to hang up on a peer that broke the
// protocol (it should be immediate; the bound only keeps the test finite).
const dropBound = 10 * time.Second

// attack is one scripted misbehaviour on an established connection.
type attack struct {
	Name     string
	Fast     bool // handshake with the fast and extension bits
	WantDrop bool // the victim must hang up; otherwise tolerating it is fine
	Run      func(a *attacker, f *fixture)
}

// wireAttacks are the attacks that work against any victim (seeder or
// downloader) of fixture f.
func wireAttacks() []attack {
	n := func(f *fixture) uint32 { return uint32(f.NumPieces()) }
	bfLen := func(f *fixture) int { return (f.NumPieces() + 7) / 8 }
	full := func(f *fixture) []byte {
		bf := make([]byte, bfLen(f))
		for i := 0; i < f.NumPieces(); i++ {
			bf[i/8] |= 0x80 >> (i % 8)
		}
		return bf
	}
	return []attack{
		{"length prefix 4 GiB", true, true, func(a *attacker, f *fixture) { a.send(u32s(0xFFFFFFFF)) }},
		{"length prefix 2 GiB with data", true, true, func(a *attacker, f *fixture) { a.send(append(u32s(1<<31), make([]byte, 64<<10)...)) }},
		{"length prefix 128 KiB+14 piece", true, true, func(a *attacker, f *fixture) { a.send(append(u32s(wire.MaxBlock+14, 7<<24), make([]byte, 1024)...)) }},
		{"bitfield one byte short", true, true, func(a *attacker, f *fixture) { a.send(frame(5, full(f)[:bfLen(f)-1]...)) }},
		{"bitfield one byte long", true, true, func(a *attacker, f *fixture) { a.send(frame(5, append(full(f), 0xFF)...)) }},
		{"bitfield spare bits set", true, true, func(a *attacker, f *fixture) {
			bf := full(f)
			bf[len(bf)-1] = 0xFF
			a.send(frame(5, bf...))
		}},
		{"bitfield 1 MiB", true, true, func(a *attacker, f *fixture) { a.send(frame(5, make([]byte, 1<<20)...)) }},
		{"have index = numPieces", true, true, func(a *attacker, f *fixture) { a.send(frame(4, u32s(n(f))...)) }},
		{"have index 2^32-1", true, true, func(a *attacker, f *fixture) { a.send(frame(4, u32s(0xFFFFFFFF)...)) }},
		{"have with 9-byte payload", true, true, func(a *attacker, f *fixture) { a.send(frame(4, make([]byte, 9)...)) }},
		{"request piece out of range", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(n(f), 0, 16384)...)) }},
		{"request beyond piece end", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(0, uint32(f.PieceLen)-100, 16384)...)) }},
		{"request beyond last piece end", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(n(f)-1, uint32(f.PieceLen)-16384, 16384)...)) }},
		{"request 128 KiB + 1", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(0, 0, wire.MaxBlock+1)...)) }},
		{"request 4 GiB - 1", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(0, 0, 0xFFFFFFFF)...)) }},
		{"request length 0", true, true, func(a *attacker, f *fixture) { a.send(frame(6, u32s(0, 0, 0)...)) }},
		{"request with 5-byte payload", true, true, func(a *attacker, f *fixture) { a.send(frame(6, make([]byte, 5)...)) }},
		{"piece for piece out of range", true, true, func(a *attacker, f *fixture) { a.send(frame(7, append(u32s(n(f), 0), make([]byte, 16384)...)...)) }},
		{"piece beyond piece end", true, true, func(a *attacker, f *fixture) {
			a.send(frame(7, append(u32s(0, uint32(f.PieceLen)-8192), make([]byte, 16384)...)...))
		}},
		{"piece with odd block length", true, false, func(a *attacker, f *fixture) { a.send(frame(7, append(u32s(1, 0), make([]byte, 1000)...)...)) }},
		{"have-all without fast extension", false, true, func(a *attacker, f *fixture) { a.send(frame(14)) }},
		{"reject without fast extension", false, true, func(a *attacker, f *fixture) { a.send(frame(16, u32s(0, 0, 16384)...)) }},
		{"extended handshake not bencode", true, true, func(a *attacker, f *fixture) { a.send(frame(20, append([]byte{0}, "garbage"...)...)) }},
		{"extended handshake 100 KiB", true, true, func(a *attacker, f *fixture) {
			a.send(frame(20, append([]byte{0}, "d1:v100000:"+strings.Repeat("v", 100000)+"e"...)...))
		}},
		{"extended handshake metadata_size -1", true, false, func(a *attacker, f *fixture) {
			a.send(frame(20, append([]byte{0}, "d1:md11:ut_metadatai1ee13:metadata_sizei-1ee"...)...))
		}},
		// tolerated: legal or harmless, but memory must stay bounded
		{"unknown message id 99 (64 KiB)", true, false, func(a *attacker, f *fixture) { a.send(frame(99, make([]byte, 64<<10)...)) }},
		{"10k cancels for blocks never requested", true, false, func(a *attacker, f *fixture) {
			var buf []byte
			for i := 0; i < 10000; i++ {
				buf = append(buf, frame(8, u32s(uint32(i)%n(f), 0, 16384)...)...)
			}
			a.send(buf)
		}},
	}
}

// runAttacks runs every attack on its own connection to addr, a few at a
// time, and returns what happened (one line per attack) and the number
// dropped. Attacks that want a drop fail t when the victim keeps the
// connection.
func runAttacks(t *testing.T, addr string, f *fixture, attacks []attack) (lines []string, dropped int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, at := range attacks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var a *attacker
			var err error
			for range 20 { // the victim accepts once its torrent is ready
				if a, err = dialAttacker(addr, f.InfoHash, at.Fast); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("%s: handshake: %v", at.Name, err)
				return
			}
			defer a.Close()
			start := time.Now()
			at.Run(a, f)
			d := a.droppedWithin(map[bool]time.Duration{true: dropBound, false: 3 * time.Second}[at.WantDrop])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case d:
				dropped++
				lines = append(lines, fmt.Sprintf("%-38s dropped after %v", at.Name, time.Since(start).Round(time.Millisecond)))
			case at.WantDrop:
				t.Errorf("%s: connection still open after %v", at.Name, dropBound)
				lines = append(lines, fmt.Sprintf("%-38s NOT DROPPED", at.Name))
			default:
				lines = append(lines, fmt.Sprintf("%-38s tolerated (connection kept)", at.Name))
			}
		}()
	}
	wg.Wait()
	return lines, dropped
}

// handshakeAttacks try broken handshakes; each must end the connection.
func handshakeAttacks(t *testing.T, addr string, f *fixture) (lines []string, dropped int) {
	wrongHash := f.InfoHash
	wrongHash[0] ^= 0xFF
	good := wire.Handshake{InfoHash: f.InfoHash}
	cases := []struct {
		name string
		data []byte
	}{
		{"handshake for an unknown info-hash", wire.Handshake{InfoHash: wrongHash}.Append(nil)},
		{"handshake pstrlen 255", append([]byte{255}, make([]byte, 300)...)},
		{"handshake pstrlen 0", append([]byte{0}, good.Append(nil)[1:]...)},
		{"handshake wrong protocol string", append([]byte("\x13BitTorrent protocoX"), good.Append(nil)[20:]...)},
		{"HTTP request instead of handshake", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"handshake then 4 GiB prefix", append(good.Append(nil), u32s(0xFFFFFFFF)...)},
	}
	for _, c := range cases {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("%s: dial: %v", c.name, err)
			continue
		}
		_, _ = nc.Write(c.data)
		start := time.Now()
		ok := closedWithin(nc, dropBound)
		nc.Close()
		if !ok {
			t.Errorf("%s: connection still open after %v", c.name, dropBound)
			lines = append(lines, fmt.Sprintf("%-38s NOT DROPPED", c.name))
			continue
		}
		dropped++
		lines = append(lines, fmt.Sprintf("%-38s dropped after %v", c.name, time.Since(start).Round(time.Millisecond)))
	}
	return lines, dropped
}

// closedWithin reads (and discards) until the peer closes or d passes.
func closedWithin(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !(ok && ne.Timeout())
		}
	}
}

// dripHandshake sends a valid handshake one byte a second and reports how
// long the victim took to hang up (0 when it never did within limit).
func dripHandshake(addr string, f *fixture, limit time.Duration) time.Duration {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0
	}
	defer nc.Close()
	hs := wire.Handshake{InfoHash: f.InfoHash}.Append(nil)
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		closedWithin(nc, limit)
		close(closed)
	}()
	for i := 0; time.Since(start) < limit; i++ {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(time.Second):
		}
		if i < len(hs)-1 { // never the last byte
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := nc.Write(hs[i : i+1]); err != nil {
				<-closed
				return time.Since(start)
			}
		}
	}
	return 0
}

// flood opens n connections to addr (half complete a handshake, half send
// nothing) and k keep-alive streams of 4 MiB each, samples the victim's RSS
// meanwhile, and returns the peak RSS in KiB. Every connection is closed
// before it returns.
func flood(t *testing.T, addr string, f *fixture, pid, n, k int) (peakKiB int64, accepted int) {
	var conns []net.Conn
	var mu sync.Mutex
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rssKiB(pid); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < n; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			continue
		}
		mu.Lock()
		conns = append(conns, nc)
		mu.Unlock()
		if i%2 == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hs := wire.Handshake{InfoHash: f.InfoHash}
				_, _ = rand.Read(hs.PeerID[:])
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = nc.Write(hs.Append(nil))
				if _, err := wire.ReadHandshake(nc); err == nil {
					ok.Add(1)
				}
			}()
		}
	}
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := dialAttacker(addr, f.InfoHash, true)
			if err != nil {
				return
			}
			defer a.Close()
			zeros := make([]byte, 64<<10) // 16384 keep-alives per write
			for j := 0; j < 64; j++ {
				a.send(zeros)
			}
		}()
	}
	wg.Wait()
	time.Sleep(time.Second)
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	close(stop)
	<-sampled
	return peak.Load(), int(ok.Load())
}

// TestHostilePeersSeeder attacks a `shoal seed` while an honest shoal
// leecher downloads from it: every protocol violation ends the attacker's
// connection, the flood keeps memory bounded, and the honest download (and
// a second one started after the flood) completes byte-identical.
func TestHostilePeersSeeder(t *testing.T) {
	t.Parallel()
	f := makeFixture(t, "seeded.bin", 6<<20+1000, 256<<10, "")
	seeder := clients.StartShoalSeeder(t, f.Torrent, f.DataDir, "--upload-limit", "1M")
	addr := seeder.Addr.String()
	if err := clients.WaitListening(addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	honest := clients.StartShoalLeecher(t, f.Torrent, out, "--peer", addr)

	// the drip runs alongside everything else (it takes ~20 s)
	drip := make(chan time.Duration, 1)
	go func() { drip <- dripHandshake(addr, f, 40*time.Second) }()

	lines, dropped := runAttacks(t, addr, f, wireAttacks())
	hl, hd := handshakeAttacks(t, addr, f)
	lines, dropped = append(lines, hl...), dropped+hd

	before := rssKiB(seeder.PID())
	peak, accepted := flood(t, addr, f, seeder.PID(), 400, 8)
	after := rssKiB(seeder.PID())
	t.Logf("seeder RSS: %d KiB before the flood, peak %d KiB, %d KiB after; %d of 200 handshaking flood connections got a handshake back", before, peak, after, accepted)
	if peak == 0 || peak > rssCapKiB {
		t.Errorf("seeder RSS peaked at %d KiB under the flood, cap %d KiB", peak, rssCapKiB)
	}

	if err := honest.WaitDone(120 * time.Second); err != nil {
		t.Fatalf("honest leecher did not finish while under attack: %v\n%s", err, honest.Log())
	}
	if err := sameFile(filepath.Join(out, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	// still serving after the flood
	out2 := filepath.Join(t.TempDir(), "out2")
	second := clients.StartShoalLeecher(t, f.Torrent, out2, "--peer", addr)
	if err := second.WaitDone(120 * time.Second); err != nil {
		t.Fatalf("a leecher started after the flood did not finish: %v", err)
	}
	if err := sameFile(filepath.Join(out2, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	d := <-drip
	if d == 0 {
		t.Errorf("handshake dripped 1 byte/s: connection still open after 40 s")
	} else {
		lines = append(lines, fmt.Sprintf("%-38s dropped after %v", "handshake dripped 1 byte/s", d.Round(time.Second)))
		dropped++
	}
	for _, l := range lines {
		t.Log("seeder: " + l)
	}
	if seeder.Exited() {
		t.Fatalf("seeder died: %v", seeder.Wait(0))
	}
	total := len(wireAttacks()) + len(hl) + 1
	record(t, "peer attacks on shoal seed", total,
		fmt.Sprintf("%d dropped, rest tolerated; honest leechers completed byte-identical", dropped))
	record(t, "connection flood on shoal seed", 400+8,
		fmt.Sprintf("400 conns + 8x1M keep-alives: RSS %d→peak %d KiB (cap %d); served on", before, peak, rssCapKiB))
}
