package server

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func listenTCP(t *testing.T) (net.Listener, error) {
	t.Helper()
	return net.Listen("tcp", "127.0.0.1:0")
}

func connectPkt(tid uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, udpProtocolID)
	b = binary.BigEndian.AppendUint32(b, actionConnect)
	return binary.BigEndian.AppendUint32(b, tid)
}

func announcePkt(connID uint64, tid uint32, ih InfoHash, left int64, ev Event, numWant int32, port uint16) []byte {
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, tid)
	b = append(b, ih[:]...)
	b = append(b, "-SH0001-abcdefghijkl"...)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(left))
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(ev))
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0x1234)
	b = binary.BigEndian.AppendUint32(b, uint32(numWant))
	return binary.BigEndian.AppendUint16(b, port)
}

func scrapePkt(connID uint64, tid uint32, hashes ...InfoHash) []byte {
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, actionScrape)
	b = binary.BigEndian.AppendUint32(b, tid)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

func newTestUDP(t *testing.T, cfg Config) (*UDPServer, *Tracker, *fakeClock) {
	t.Helper()
	tr, clk := newTestTracker(t, cfg)
	s, err := NewUDPServer(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, tr, clk
}

func udpConnect(t *testing.T, s *UDPServer, from netip.AddrPort) uint64 {
	t.Helper()
	resp := s.Handle(context.Background(), connectPkt(7), from, nil)
	if len(resp) != 16 || binary.BigEndian.Uint32(resp) != actionConnect || binary.BigEndian.Uint32(resp[4:]) != 7 {
		t.Fatalf("connect response %x", resp)
	}
	return binary.BigEndian.Uint64(resp[8:])
}

func TestUDPAnnounceAndScrape(t *testing.T) {
	s, _, _ := newTestUDP(t, Config{Interval: 100 * time.Second})
	a := netip.MustParseAddrPort("127.0.0.1:40000")
	b := netip.MustParseAddrPort("127.0.0.2:40001")
	ida, idb := udpConnect(t, s, a), udpConnect(t, s, b)
	r := s.Handle(context.Background(), announcePkt(ida, 9, ihA, 0, EventStarted, -1, 6881), a, nil)
	if len(r) != 20 || binary.BigEndian.Uint32(r) != actionAnnounce || binary.BigEndian.Uint32(r[4:]) != 9 ||
		binary.BigEndian.Uint32(r[8:]) != 100 || binary.BigEndian.Uint32(r[16:]) != 1 {
		t.Fatalf("seeder announce response %x", r)
	}
	r = s.Handle(context.Background(), announcePkt(idb, 10, ihA, 5, EventStarted, 50, 6882), b, nil)
	if len(r) != 26 || binary.BigEndian.Uint32(r[12:]) != 1 || binary.BigEndian.Uint32(r[16:]) != 1 {
		t.Fatalf("leecher announce response %x", r)
	}
	if p, _ := addrFromCompact(r[20:]); p != netip.MustParseAddrPort("127.0.0.1:6881") {
		t.Fatalf("leecher was given %v", p)
	}
	r = s.Handle(context.Background(), scrapePkt(idb, 11, ihA, ihB), b, nil)
	if len(r) != 8+24 || binary.BigEndian.Uint32(r) != actionScrape ||
		binary.BigEndian.Uint32(r[8:]) != 1 || binary.BigEndian.Uint32(r[16:]) != 1 || binary.BigEndian.Uint32(r[20:]) != 0 {
		t.Fatalf("scrape response %x", r)
	}
}

func TestUDPIPv6PeersAre18Bytes(t *testing.T) {
	s, _, _ := newTestUDP(t, Config{})
	a := netip.MustParseAddrPort("[fd00::1]:40000")
	b := netip.MustParseAddrPort("[fd00::2]:40000")
	s.Handle(context.Background(), announcePkt(udpConnect(t, s, a), 1, ihA, 0, EventStarted, -1, 6881), a, nil)
	r := s.Handle(context.Background(), announcePkt(udpConnect(t, s, b), 1, ihA, 1, EventStarted, -1, 6882), b, nil)
	if len(r) != 20+18 {
		t.Fatalf("IPv6 announce response %x", r)
	}
	if p, _ := addrFromCompact(r[20:]); p != netip.MustParseAddrPort("[fd00::1]:6881") {
		t.Fatalf("got %v", p)
	}
}

func TestUDPConnectionIDs(t *testing.T) {
	s, tr, clk := newTestUDP(t, Config{})
	a := netip.MustParseAddrPort("127.0.0.1:40000")
	id := udpConnect(t, s, a)
	ok := func(id uint64, from netip.AddrPort) bool {
		return s.Handle(context.Background(), announcePkt(id, 1, ihA, 0, EventNone, 1, 6881), from, nil) != nil
	}
	if !ok(id, a) {
		t.Fatal("fresh id refused")
	}
	// Same IP, other port: accepted (ids bind the IP).
	if !ok(id, netip.MustParseAddrPort("127.0.0.1:40001")) {
		t.Fatal("id refused from another port of the same IP")
	}
	if ok(id, netip.MustParseAddrPort("127.0.0.2:40000")) {
		t.Fatal("id accepted from another IP")
	}
	if ok(id^1, a) || ok(id^(1<<40), a) || ok(0, a) {
		t.Fatal("forged id accepted")
	}
	// A server with another secret does not accept it.
	other, _ := NewUDPServer(tr, []byte("another secret"))
	if other.Handle(context.Background(), announcePkt(id, 1, ihA, 0, EventNone, 1, 6881), a, nil) != nil {
		t.Fatal("id accepted under another secret")
	}
	clk.Add(connIDLifetime - time.Second)
	if !ok(id, a) {
		t.Fatal("id refused within its lifetime")
	}
	clk.Add(2 * time.Second)
	if ok(id, a) {
		t.Fatal("id accepted after its lifetime (replay)")
	}
	if tr.Metrics().Errors(ErrConnectionID) != 6 {
		t.Fatalf("bad_connection_id errors = %d, want 6", tr.Metrics().Errors(ErrConnectionID))
	}
	// Servers sharing a secret accept each other's ids.
	s1, _ := NewUDPServer(tr, []byte("shared"))
	s2, _ := NewUDPServer(tr, []byte("shared"))
	id = udpConnect(t, s1, a)
	if s2.Handle(context.Background(), announcePkt(id, 1, ihA, 0, EventNone, 1, 6881), a, nil) == nil {
		t.Fatal("shared-secret id refused by the other instance")
	}
}

func TestUDPHostile(t *testing.T) {
	s, tr, _ := newTestUDP(t, Config{Allow: map[InfoHash]struct{}{ihA: {}}})
	a := netip.MustParseAddrPort("127.0.0.1:40000")
	id := udpConnect(t, s, a)
	drop := [][]byte{
		nil,
		{1, 2, 3},
		make([]byte, 15),
		make([]byte, 16), // connect with protocol id 0
		append(connectPkt(1)[:8:8], 0, 0, 0, 9, 0, 0, 0, 0), // unknown action
		make([]byte, maxUDPPacket),
		[]byte(strings.Repeat("\xff", 200)),
	}
	for i, p := range drop {
		if r := s.Handle(context.Background(), p, a, nil); r != nil {
			t.Errorf("garbage packet %d answered with %x", i, r)
		}
	}
	errs := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"short announce", announcePkt(id, 1, ihA, 0, 0, 1, 6881)[:60], "too short"},
		{"port 0", announcePkt(id, 1, ihA, 0, 0, 1, 0), "port"},
		{"negative left", announcePkt(id, 1, ihA, -1, 0, 1, 6881), "negative"},
		{"bad event", announcePkt(id, 1, ihA, 0, 9, 1, 6881), "event"},
		{"unlisted hash", announcePkt(id, 1, ihB, 0, 0, 1, 6881), "not tracked"},
		{"empty scrape", scrapePkt(id, 1), "scrape"},
		{"ragged scrape", append(scrapePkt(id, 1, ihA), 1, 2, 3), "scrape"},
		{"huge scrape", scrapePkt(id, 1, make([]InfoHash, MaxScrapeHashes+1)...), "scrape"},
	}
	for _, c := range errs {
		r := s.Handle(context.Background(), c.pkt, a, nil)
		if len(r) < 8 || binary.BigEndian.Uint32(r) != actionError || binary.BigEndian.Uint32(r[4:]) != 1 ||
			!strings.Contains(string(r[8:]), c.want) {
			t.Errorf("%s: response %q, want an error mentioning %q", c.name, r, c.want)
		}
	}
	// Huge numwant is capped to what fits one datagram.
	for i := range 300 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1)
		s.Handle(context.Background(), announcePkt(udpConnect(t, s, from), 1, ihA, 1, 0, 0, 6881), from, nil)
	}
	r := s.Handle(context.Background(), announcePkt(id, 1, ihA, 1, 0, 1<<30, 6881), a, nil)
	if len(r) != 20+6*min(maxUDPPeers4, DefaultMaxNumWant) {
		t.Fatalf("huge numwant gave a %d-byte answer", len(r))
	}
	if tr.Metrics().Dropped() < uint64(len(drop)) {
		t.Fatalf("dropped = %d", tr.Metrics().Dropped())
	}
}

func TestUDPServeRealSocket(t *testing.T) {
	tr, _ := newTestTracker(t, Config{Now: time.Now})
	s, err := NewUDPServer(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()

	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	roundTrip := func(p []byte) []byte {
		// A garbage datagram first: the server must keep serving.
		c.Write([]byte("garbage"))
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	r := roundTrip(connectPkt(5))
	id := binary.BigEndian.Uint64(r[8:])
	r = roundTrip(announcePkt(id, 6, ihA, 0, EventStarted, -1, 6881))
	if len(r) != 20 || binary.BigEndian.Uint32(r) != actionAnnounce || binary.BigEndian.Uint32(r[16:]) != 1 {
		t.Fatalf("announce over the socket: %x", r)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

func FuzzUDPHandle(f *testing.F) {
	tr, err := New(NewMemoryStore(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	s, _ := NewUDPServer(tr, []byte("fuzz"))
	from := netip.MustParseAddrPort("127.0.0.1:1")
	id := binary.BigEndian.Uint64(s.Handle(context.Background(), connectPkt(1), from, nil)[8:])
	f.Add(connectPkt(1))
	f.Add(announcePkt(id, 1, ihA, 0, 0, -1, 6881))
	f.Add(scrapePkt(id, 1, ihA))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// Give fuzzed packets a valid id half the time so parsing is reached.
		if len(pkt) >= 16 && pkt[0]&1 == 1 {
			binary.BigEndian.PutUint64(pkt, id)
		}
		r := s.Handle(context.Background(), pkt, from, nil)
		if len(r) > 1500 {
			t.Fatalf("%d-byte answer", len(r))
		}
	})
}

func FuzzParseAnnounce(f *testing.F) {
	f.Add(announceQuery(ihA, 6881, "numwant=5&event=started"))
	f.Add("info_hash=%zz")
	ip := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, q string) {
		req, _, fail := parseAnnounce(q, ip)
		if (req == nil) == (fail == nil) {
			t.Fatalf("want exactly one of request and failure: %v %v", req, fail)
		}
		if req != nil && (req.Addr.Port() == 0 || req.Left < 0 || req.Uploaded < 0 || req.Downloaded < 0) {
			t.Fatalf("invalid request accepted: %+v", req)
		}
	})
}
