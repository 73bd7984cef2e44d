package session

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// rawHP is a hand-driven peer that speaks BEP 10 and, if hpID != 0,
// ut_holepunch under that id.
type rawHP struct {
	nc   net.Conn
	r    *wire.Reader
	port int // the listen port it claims ("p")
}

func dialRawHP(t *testing.T, addr string, ih [20]byte, id byte, hpID, port int) *rawHP {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	var hs wire.Handshake
	hs.InfoHash = ih
	copy(hs.PeerID[:], "-XX0001-rawholepunc")
	hs.PeerID[19] = id
	hs.SetExtended()
	if _, err := nc.Write(hs.Append(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ReadHandshake(nc); err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	if hpID != 0 {
		m[wire.ExtHolepunch] = hpID
	}
	eh := wire.ExtHandshake{M: m, P: port}
	if _, err := nc.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Payload: eh.Marshal()})); err != nil {
		t.Fatal(err)
	}
	return &rawHP{nc: nc, r: wire.NewReader(nc, 1<<20), port: port}
}

// send sends a ut_holepunch message under the id the client announced.
func (p *rawHP) send(t *testing.T, h wire.Holepunch) {
	t.Helper()
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.nc.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Extended, ExtID: extHolepunchID, Payload: b})); err != nil {
		t.Fatal(err)
	}
}

// next returns the next ut_holepunch message sent to us under ourID.
func (p *rawHP) next(t *testing.T, ourID uint8) wire.Holepunch {
	t.Helper()
	for {
		m, err := p.r.Read()
		if err != nil {
			t.Fatalf("waiting for a ut_holepunch message: %v", err)
		}
		if m.ID == wire.Extended && m.ExtID == wire.ExtHandshakeID {
			h, err := wire.ParseExtHandshake(m.Payload)
			if err != nil || h.M[wire.ExtHolepunch] != extHolepunchID {
				t.Fatalf("extension handshake without ut_holepunch=%d: %+v %v", extHolepunchID, h.M, err)
			}
			continue
		}
		if m.ID == wire.Extended && m.ExtID == ourID {
			var h wire.Holepunch
			if err := h.UnmarshalBinary(m.Payload); err != nil {
				t.Fatal(err)
			}
			return h
		}
	}
}

// TestHolepunchRendezvousServed: shoal as the relaying peer R of BEP 55.
// X asks R to introduce it to Y; both get a connect naming the other's
// listen endpoint. Rendezvous for a peer R does not have, for a peer
// without the extension, and for X itself are answered with the error codes.
func TestHolepunchRendezvousServed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mi, _ := makeTorrent(t, t.TempDir(), 64<<10, 16<<10)
	r := newTestClient(t)
	go r.Run(ctx)
	tor, err := r.Add(ctx, mi, Options{Root: t.TempDir(), NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, tor)
	addr := r.Addr().String()
	x := dialRawHP(t, addr, mi.InfoHash, 'x', 7, 40001)
	y := dialRawHP(t, addr, mi.InfoHash, 'y', 9, 40002)
	z := dialRawHP(t, addr, mi.InfoHash, 'z', 0, 40003) // no ut_holepunch
	loop := netip.MustParseAddr("127.0.0.1")
	ep := func(p *rawHP) netip.AddrPort { return netip.AddrPortFrom(loop, uint16(p.port)) }
	// wait until R has all three (it answers only for peers it has)
	deadline := time.Now().Add(10 * time.Second)
	for len(tor.Peers()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(tor.Peers()); n != 3 {
		t.Fatalf("R has %d peers, want 3", n)
	}
	time.Sleep(200 * time.Millisecond) // their extension handshakes are read in order with the rest

	x.send(t, wire.Holepunch{Type: wire.HolepunchRendezvous, Addr: ep(y)})
	if h := x.next(t, 7); h.Type != wire.HolepunchConnect || h.Addr != ep(y) {
		t.Fatalf("X got %+v, want connect to %v", h, ep(y))
	}
	if h := y.next(t, 9); h.Type != wire.HolepunchConnect || h.Addr != ep(x) {
		t.Fatalf("Y got %+v, want connect to %v", h, ep(x))
	}
	for _, c := range []struct {
		target netip.AddrPort
		code   uint32
	}{
		{netip.MustParseAddrPort("127.0.0.1:1"), wire.HolepunchNotConnected},
		{ep(z), wire.HolepunchNoSupport},
		{ep(x), wire.HolepunchNoSelf},
	} {
		x.send(t, wire.Holepunch{Type: wire.HolepunchRendezvous, Addr: c.target})
		if h := x.next(t, 7); h.Type != wire.HolepunchError || h.ErrCode != c.code || h.Addr != c.target {
			t.Fatalf("rendezvous to %v: got %+v, want error %d", c.target, h, c.code)
		}
	}
	if st := r.PunchStats(); st.HolepunchRelayed != 1 {
		t.Fatalf("R introduced %d pairs, want 1 (%+v)", st.HolepunchRelayed, st)
	}
	// a peer that floods rendezvous is cut off after holepunchPerMinute
	for range holepunchPerMinute {
		x.send(t, wire.Holepunch{Type: wire.HolepunchRendezvous, Addr: ep(y)})
	}
	n := 0
	for {
		x.nc.SetReadDeadline(time.Now().Add(time.Second))
		m, err := x.r.Read()
		if err != nil {
			break
		}
		if m.ID == wire.Extended && m.ExtID == 7 {
			n++
		}
	}
	if want := holepunchPerMinute - 4; n != want {
		t.Fatalf("X got %d answers to %d more rendezvous, want %d (the per-minute cap)", n, holepunchPerMinute, want)
	}
}

// TestHolepunchConnectsUnreachablePeers: A cannot accept connections (its
// listener is closed: a NAT in miniature), B knows A's address and fails
// to dial it, so B asks the seeder S, which both are connected to, for a
// rendezvous; S tells A to connect to B, and A and B exchange pieces
// directly. With PunchPeers both dial from their listen ports.
func TestHolepunchConnectsUnreachablePeers(t *testing.T) {
	for _, punch := range []bool{false, true} {
		name := "dial"
		if punch {
			name = "punch"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			// private: no PEX, so A can learn of B only through the rendezvous
			dir := t.TempDir()
			makeTorrent(t, dir, 512<<10, 16<<10)
			mi, _, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: filepath.Join(dir, "content.bin"), PieceLength: 16 << 10, Private: true, NoDate: true})
			if err != nil {
				t.Fatal(err)
			}
			newC := func(up int64) *Client {
				return newTestClientWith(t, Config{Listen: "127.0.0.1:0", PunchPeers: punch, UploadRate: up})
			}
			// a slow seeder: A and B are still downloading when they meet
			s, a, b := newC(64<<10), newC(0), newC(0)
			go s.Run(ctx)
			go b.Run(ctx)
			a.ln.Close() // A accepts nothing; it dials out only
			aAddr := a.Addr().String()
			ts, err := s.Add(ctx, mi, Options{Root: dir, NoTrackers: true})
			if err != nil {
				t.Fatal(err)
			}
			ta, err := a.Add(ctx, mi, Options{Root: t.TempDir(), NoTrackers: true, Peers: []string{s.Addr().String()}})
			if err != nil {
				t.Fatal(err)
			}
			// B's dials to A fail; once B is connected to S, a failed dial
			// finds a ut_holepunch peer to ask
			tb, err := b.Add(ctx, mi, Options{Root: t.TempDir(), NoTrackers: true, Peers: []string{s.Addr().String(), aAddr}})
			if err != nil {
				t.Fatal(err)
			}
			defer stopAll(t, cancel, ts, ta, tb)
			deadline := time.Now().Add(20 * time.Second)
			for len(ta.Peers()) < 2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if len(ta.Peers()) < 2 {
				t.Fatalf("A never connected to B (A's peers %v; stats S %+v A %+v B %+v)", ta.Peers(), s.PunchStats(), a.PunchStats(), b.PunchStats())
			}
			sa, sb, ss := a.PunchStats(), b.PunchStats(), s.PunchStats()
			if sb.HolepunchRequests < 1 || ss.HolepunchRelayed < 1 || sa.HolepunchAttempts < 1 || sa.HolepunchSuccesses < 1 {
				t.Fatalf("want B to ask, S to introduce and A to connect: S %+v A %+v B %+v", ss, sa, sb)
			}
			waitDone(t, ta, 20*time.Second)
			waitDone(t, tb, 20*time.Second)
			if _, err := os.Stat(filepath.Join(dir, "content.bin")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHolepunchTargetOK(t *testing.T) {
	for _, c := range []struct {
		target, from string
		ok           bool
	}{
		{"198.18.0.5:6881", "198.18.0.9", true},
		{"100.64.1.2:6881", "198.18.0.9", true}, // NATed peers on a LAN: fine
		{"[2001:db8::1]:6881", "198.18.0.9", true},
		{"127.0.0.1:6881", "127.0.0.1", true}, // all on this host
		{"127.0.0.1:22", "198.18.0.9", false}, // a remote peer naming our loopback
		{"[::ffff:127.0.0.1]:22", "198.18.0.9", false},
		{"[::1]:22", "198.18.0.9", false},
		{"169.254.1.1:80", "198.18.0.9", false},
		{"169.254.1.1:80", "169.254.7.7", true},
		{"0.0.0.0:6881", "198.18.0.9", false},
		{"224.0.0.1:6881", "198.18.0.9", false},
		{"198.18.0.5:0", "198.18.0.9", false},
	} {
		if got := holepunchTargetOK(netip.MustParseAddrPort(c.target), netip.MustParseAddr(c.from)); got != c.ok {
			t.Errorf("connect to %s from %s: ok=%v, want %v", c.target, c.from, got, c.ok)
		}
	}
}
