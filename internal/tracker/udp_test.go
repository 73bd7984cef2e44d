package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeUDP is a minimal BEP 15 tracker on loopback for client tests.
type fakeUDP struct {
	conn *net.UDPConn
	v6   bool

	mu           sync.Mutex
	nextID       uint64
	ids          map[uint64]bool // connection ids issued and still honoured
	connects     int
	announces    int
	lastReq      []byte // last announce packet
	drop         int    // drop this many upcoming packets
	wrongTxFirst bool   // send a reply with a bad txid before each real one
	onlyWrongTx  bool   // never send the right txid
	failWith     string // answer announces with an error
}

func newFakeUDP(t *testing.T, network, addr string) *fakeUDP {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Skip(err)
	}
	conn, err := net.ListenUDP(network, la)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	f := &fakeUDP{conn: conn, v6: network == "udp6", nextID: 0x1000, ids: map[uint64]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, r := range f.handle(buf[:n]) {
				conn.WriteToUDPAddrPort(r, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

func (f *fakeUDP) url() string {
	return "udp://" + f.conn.LocalAddr().String()
}

// set changes the fake's behaviour while it runs.
func (f *fakeUDP) set(fn func(f *fakeUDP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeUDP) lastAnnounce() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq
}

// forgetIDs simulates a tracker restart.
func (f *fakeUDP) forgetIDs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = map[uint64]bool{}
}

func (f *fakeUDP) counts() (connects, announces int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects, f.announces
}

func hdr(action, txid uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, action), txid)
}

func (f *fakeUDP) handle(p []byte) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drop > 0 {
		f.drop--
		return nil
	}
	if len(p) < 16 {
		return nil
	}
	be := binary.BigEndian
	connID, action, txid := be.Uint64(p), be.Uint32(p[8:]), be.Uint32(p[12:])
	var reply []byte
	switch {
	case action == udpActionConnect:
		if connID != udpProtocolID {
			return nil
		}
		f.connects++
		f.nextID++
		f.ids[f.nextID] = true
		reply = be.AppendUint64(hdr(0, txid), f.nextID)
	case !f.ids[connID]:
		reply = append(hdr(udpActionError, txid), "bad connection id"...)
	case action == udpActionAnnounce && len(p) >= udpAnnounceLen:
		f.announces++
		f.lastReq = append([]byte(nil), p...)
		if f.failWith != "" {
			reply = append(hdr(udpActionError, txid), f.failWith...)
			break
		}
		reply = hdr(udpActionAnnounce, txid)
		reply = be.AppendUint32(reply, 1800)
		reply = be.AppendUint32(reply, 3) // leechers
		reply = be.AppendUint32(reply, 2) // seeders
		if f.v6 {
			a := netip.MustParseAddr("2001:db8::7").As16()
			reply = be.AppendUint16(append(reply, a[:]...), 7777)
		} else {
			reply = append(reply, 10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a, 0xe2)
		}
	case action == udpActionScrape:
		reply = hdr(udpActionScrape, txid)
		for h := p[16:]; len(h) >= 20; h = h[20:] {
			reply = be.AppendUint32(reply, uint32(h[0]))
			reply = be.AppendUint32(reply, uint32(h[1]))
			reply = be.AppendUint32(reply, uint32(h[2]))
		}
	default:
		return nil
	}
	bad := append(hdr(be.Uint32(reply), txid+1), reply[8:]...)
	switch {
	case f.onlyWrongTx:
		return [][]byte{bad}
	case f.wrongTxFirst:
		return [][]byte{bad, reply}
	}
	return [][]byte{reply}
}

func TestUDPAnnounce(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	c := &Client{}
	req := testRequest()
	req.Left = -1
	resp, err := c.Announce(context.Background(), f.url(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp.Peers); got != "[10.0.0.1:6881 10.0.0.2:6882]" {
		t.Errorf("peers = %s", got)
	}
	if resp.Seeders != 2 || resp.Leechers != 3 || resp.Interval != 30*time.Minute {
		t.Errorf("resp = %+v", resp)
	}
	p := f.lastAnnounce()
	be := binary.BigEndian
	if len(p) != udpAnnounceLen {
		t.Fatalf("announce packet is %d bytes (no URL data expected)", len(p))
	}
	if string(p[16:36]) != string(req.InfoHash[:]) || string(p[36:56]) != string(req.PeerID[:]) ||
		be.Uint64(p[56:]) != 20 || be.Uint64(p[64:]) != UnknownLeft || be.Uint64(p[72:]) != 10 ||
		be.Uint32(p[80:]) != 2 || be.Uint32(p[84:]) != 0 || be.Uint32(p[88:]) != 0xDEADBEEF ||
		int32(be.Uint32(p[92:])) != 50 || be.Uint16(p[96:]) != 6881 {
		t.Errorf("announce packet fields wrong: %x", p)
	}
}

func TestUDPURLData(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	var c Client
	if _, err := c.Announce(context.Background(), f.url()+"/pk/announce?x=1", testRequest()); err != nil {
		t.Fatal(err)
	}
	opt := f.lastAnnounce()[udpAnnounceLen:]
	want := "\x02\x10/pk/announce?x=1"
	if string(opt) != want {
		t.Errorf("BEP 41 option = %q, want %q", opt, want)
	}
}

func TestUDPConnIDReuseAndExpiry(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	now := time.Unix(1000, 0)
	c := &Client{now: func() time.Time { return now }}
	ctx := context.Background()
	for i := range 2 {
		if _, err := c.Announce(ctx, f.url(), testRequest()); err != nil {
			t.Fatal(err)
		}
		if conns, anns := f.counts(); conns != 1 || anns != i+1 {
			t.Fatalf("after %d announces: %d connects, %d announces", i+1, conns, anns)
		}
	}
	if _, err := c.Scrape(ctx, f.url(), [20]byte{5, 6, 7}); err != nil {
		t.Fatal(err)
	}
	if conns, _ := f.counts(); conns != 1 {
		t.Fatalf("scrape did not reuse connection id: %d connects", conns)
	}
	now = now.Add(UDPConnIDTTL + time.Second)
	if _, err := c.Announce(ctx, f.url(), testRequest()); err != nil {
		t.Fatal(err)
	}
	if conns, _ := f.counts(); conns != 2 {
		t.Fatalf("expired id not renewed: %d connects", conns)
	}
	// tracker restart: the cached id is refused, the client reconnects once
	f.forgetIDs()
	if _, err := c.Announce(ctx, f.url(), testRequest()); err != nil {
		t.Fatalf("after tracker restart: %v", err)
	}
	if conns, anns := f.counts(); conns != 3 || anns != 4 {
		t.Fatalf("after restart: %d connects, %d announces", conns, anns)
	}
}

func TestUDPScrape(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	var c Client
	hashes := make([][20]byte, udpMaxScrape+3) // two batches
	for i := range hashes {
		hashes[i] = [20]byte{byte(i), byte(i + 1), byte(i + 2), 0xee}
	}
	res, err := c.Scrape(context.Background(), f.url(), hashes...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(hashes) {
		t.Fatalf("%d results, want %d", len(res), len(hashes))
	}
	for i, h := range hashes {
		if want := (ScrapeResult{Seeders: i, Completed: i + 1, Leechers: i + 2}); res[h] != want {
			t.Errorf("hash %d: %+v, want %+v", i, res[h], want)
		}
	}
}

func TestUDPErrorAction(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	f.set(func(f *fakeUDP) { f.failWith = "unregistered torrent" })
	var c Client
	_, err := c.Announce(context.Background(), f.url(), testRequest())
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Reason != "unregistered torrent" {
		t.Fatalf("err = %v, want FailureError", err)
	}
}

func TestUDPWrongTxIDIgnored(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	f.set(func(f *fakeUDP) { f.wrongTxFirst = true })
	c := &Client{tryTimeout: 2 * time.Second}
	if _, err := c.Announce(context.Background(), f.url(), testRequest()); err != nil {
		t.Fatalf("a stray reply before the real one broke the exchange: %v", err)
	}

	g := newFakeUDP(t, "udp4", "127.0.0.1:0")
	g.set(func(f *fakeUDP) { f.onlyWrongTx = true })
	c = &Client{tryTimeout: 50 * time.Millisecond}
	_, err := c.Announce(context.Background(), g.url(), testRequest())
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("only wrong txids: err = %v, want a timeout", err)
	}
}

func TestUDPRetryAfterLoss(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	f.set(func(f *fakeUDP) { f.drop = 1 }) // lose the first connect
	c := &Client{tryTimeout: 100 * time.Millisecond}
	if _, err := c.Announce(context.Background(), f.url(), testRequest()); err != nil {
		t.Fatalf("one lost packet: %v", err)
	}
	if conns, _ := f.counts(); conns != 1 {
		t.Errorf("connects = %d", conns)
	}
	f.set(func(f *fakeUDP) { f.drop = 10 })
	c = &Client{tryTimeout: 50 * time.Millisecond}
	if _, err := c.Announce(context.Background(), f.url(), testRequest()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dead tracker: %v", err)
	}
}

func TestUDPContextCancel(t *testing.T) {
	f := newFakeUDP(t, "udp4", "127.0.0.1:0")
	f.set(func(f *fakeUDP) { f.drop = 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	var c Client
	if _, err := c.Announce(ctx, f.url(), testRequest()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestUDPIPv6PeerSize(t *testing.T) {
	f := newFakeUDP(t, "udp6", "[::1]:0")
	var c Client
	resp, err := c.Announce(context.Background(), f.url(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp.Peers); got != "[[2001:db8::7]:7777]" {
		t.Errorf("peers = %s", got)
	}
}

func TestUDPBadURL(t *testing.T) {
	var c Client
	if _, err := c.Announce(context.Background(), "udp://127.0.0.1/announce", testRequest()); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("no port: %v", err)
	}
}

func TestParseUDP(t *testing.T) {
	be := binary.BigEndian
	ann := be.AppendUint32(be.AppendUint32(be.AppendUint32(hdr(1, 7), 0), 4), 5)
	tests := []struct {
		name    string
		pkt     []byte
		v6      bool
		wantErr string
		peers   string
	}{
		{name: "no peers, interval 0 → default", pkt: ann, peers: "[]"},
		{name: "v4 peers", pkt: append(ann[:20:20], 1, 2, 3, 4, 0, 80), peers: "[1.2.3.4:80]"},
		{name: "odd v4", pkt: append(ann[:20:20], 1, 2, 3, 4, 0), wantErr: "multiple of 6"},
		{name: "v6 tracker, 6-byte peer", pkt: append(ann[:20:20], 1, 2, 3, 4, 0, 80), v6: true, wantErr: "multiple of 18"},
		{name: "short", pkt: hdr(1, 7), wantErr: "too short"},
		{name: "wrong txid", pkt: hdr(1, 8), wantErr: "transaction id"},
		{name: "wrong action", pkt: append(hdr(2, 7), make([]byte, 12)...), wantErr: "action 2"},
		{name: "error", pkt: append(hdr(3, 7), "nope\x00"...), wantErr: "tracker failure: nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseUDPResponse(tt.pkt, 7, udpActionAnnounce)
			var r *AnnounceResponse
			if err == nil {
				r, err = parseUDPAnnounce(p, tt.v6)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(r.Peers); got != tt.peers || r.Leechers != 4 || r.Seeders != 5 {
				t.Errorf("got %+v", r)
			}
		})
	}
	out := map[[20]byte]ScrapeResult{}
	if err := parseUDPScrape(make([]byte, 13), [][20]byte{{1}}, out); err == nil {
		t.Error("scrape reply of 13 bytes accepted")
	}
}
