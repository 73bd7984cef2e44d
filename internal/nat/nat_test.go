package nat

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePMP answers NAT-PMP on loopback like a gateway: it records mappings,
// refuses port 1 with "not authorized", and drops the first request so the
// client must retransmit.
func fakePMP(t *testing.T) (netip.AddrPort, map[uint16]uint32, *sync.Mutex) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	maps := map[uint16]uint32{}
	var mu sync.Mutex
	go func() {
		buf := make([]byte, 64)
		first := true
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if first {
				first = false
				continue
			}
			req := buf[:n]
			resp := []byte{0, req[1] + 128, 0, 0, 0, 0, 0, 42}
			switch {
			case req[1] == 0 && n == 2:
				resp = append(resp, 203, 0, 113, 7)
			case (req[1] == 1 || req[1] == 2) && n == 12:
				in, life := binary.BigEndian.Uint16(req[4:]), binary.BigEndian.Uint32(req[8:])
				if in == 1 {
					binary.BigEndian.PutUint16(resp[2:], PMPNotAuthorized)
				}
				mu.Lock()
				if life == 0 {
					delete(maps, in)
				} else {
					maps[in] = life
				}
				mu.Unlock()
				resp = binary.BigEndian.AppendUint16(resp, in)
				resp = binary.BigEndian.AppendUint16(resp, in+1000)
				resp = binary.BigEndian.AppendUint32(resp, life)
			default:
				binary.BigEndian.PutUint16(resp[2:], PMPUnsupportedOpcode)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String()), maps, &mu
}

func TestNATPMP(t *testing.T) {
	gw, maps, mu := fakePMP(t)
	c := &NATPMP{Gateway: gw, FirstWait: 50 * time.Millisecond}
	ctx := context.Background()
	ext, err := c.ExternalAddress(ctx)
	if err != nil || ext != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("external address %v, %v", ext, err)
	}
	m, err := c.AddPortMapping(ctx, "tcp", 6881, 6881, time.Hour)
	if err != nil || m.External.Port() != 7881 || m.Lifetime != time.Hour || m.InternalPort != 6881 {
		t.Fatalf("mapping %+v, %v", m, err)
	}
	mu.Lock()
	if maps[6881] != 3600 {
		t.Fatalf("gateway holds %v", maps)
	}
	mu.Unlock()
	if err := c.DeletePortMapping(ctx, "tcp", 6881); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if _, ok := maps[6881]; ok {
		t.Fatal("mapping not deleted")
	}
	mu.Unlock()
	var pe *PMPError
	if _, err := c.AddPortMapping(ctx, "udp", 1, 1, time.Hour); !errors.As(err, &pe) || pe.Code != PMPNotAuthorized {
		t.Fatalf("refused mapping: %v", err)
	}
	if _, err := c.AddPortMapping(ctx, "sctp", 5, 5, time.Hour); err == nil {
		t.Fatal("sctp accepted")
	}
	// nobody answers: bounded retries, then ErrNoReply
	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer pc.Close()
	silent := &NATPMP{Gateway: netip.MustParseAddrPort(pc.LocalAddr().String()), FirstWait: 10 * time.Millisecond, Tries: 3}
	if _, err := silent.ExternalAddress(ctx); !errors.Is(err, ErrNoReply) {
		t.Fatalf("silent gateway: %v", err)
	}
}

const igdDesc = `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList></device></deviceList></device></root>`

// TestUPnP: SSDP answered by unicast on loopback, the description and SOAP
// calls served by httptest.
func TestUPnP(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, igdDesc)
			return
		}
		body, _ := io.ReadAll(r.Body)
		action := r.Header.Get("SOAPAction")
		mu.Lock()
		calls = append(calls, action+" "+string(body))
		mu.Unlock()
		switch {
		case strings.HasSuffix(action, `#GetExternalIPAddress"`):
			io.WriteString(w, `<s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>203.0.113.9</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`)
		case strings.Contains(string(body), "<NewExternalPort>1</NewExternalPort>"):
			w.WriteHeader(500)
			io.WriteString(w, `<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`)
		default:
			io.WriteString(w, `<s:Envelope><s:Body><u:Response/></s:Body></s:Envelope>`)
		}
	}))
	defer srv.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "M-SEARCH * HTTP/1.1\r\n") {
			return
		}
		pc.WriteTo([]byte("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: "+srv.URL+"/rootDesc.xml\r\n\r\n"), from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g, err := DiscoverUPnP(ctx, pc.LocalAddr().String(), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if g.ControlURL != srv.URL+"/ctl/IPConn" || g.LocalAddr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("gateway %+v", g)
	}
	if ext, err := g.ExternalAddress(ctx); err != nil || ext != netip.MustParseAddr("203.0.113.9") {
		t.Fatalf("external %v, %v", ext, err)
	}
	if _, err := g.AddPortMapping(ctx, "tcp", 6881, 6881, time.Hour, "shoal <test>"); err != nil {
		t.Fatal(err)
	}
	var ue *UPnPError
	if _, err := g.AddPortMapping(ctx, "tcp", 1, 1, time.Hour, "x"); !errors.As(err, &ue) || ue.Code != 718 {
		t.Fatalf("conflict: %v", err)
	}
	if err := g.DeletePortMapping(ctx, "udp", 6881); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	add, del := calls[1], calls[3]
	for _, want := range []string{"#AddPortMapping", "<NewInternalClient>127.0.0.1</NewInternalClient>", "<NewProtocol>TCP</NewProtocol>",
		"<NewLeaseDuration>3600</NewLeaseDuration>", "shoal &lt;test&gt;"} {
		if !strings.Contains(add, want) {
			t.Errorf("AddPortMapping lacks %q: %s", want, add)
		}
	}
	if !strings.Contains(del, "#DeletePortMapping") || !strings.Contains(del, "<NewProtocol>UDP</NewProtocol>") {
		t.Errorf("DeletePortMapping: %s", del)
	}
}

func TestParseRoutes(t *testing.T) {
	table := "Iface\tDestination\tGateway \tFlags\nlan0\t0040A864\t00000000\t0001\neth0\t00000000\t014040A0\t0003\n"
	gw, err := parseRoutes(bufio.NewScanner(strings.NewReader(table)))
	if err != nil || gw != netip.MustParseAddr("160.64.64.1") {
		t.Fatalf("%v, %v", gw, err)
	}
	if _, err := parseRoutes(bufio.NewScanner(strings.NewReader("Iface\tDestination\tGateway\n"))); err == nil {
		t.Fatal("no default route found one")
	}
}

// startRendezvous runs a rendezvous on loopback until ctx ends; the test's
// cleanup waits for it (cancel ctx before the test returns).
func startRendezvous(t *testing.T, ctx context.Context) *RendezvousServer {
	t.Helper()
	s, err := NewRendezvousServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(ctx); close(served) }()
	t.Cleanup(func() {
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("rendezvous did not stop")
		}
	})
	return s
}

// TestUpgradeLoopback: two peers register with a rendezvous on loopback
// and get a direct connection by simultaneous open from their registered
// ports; a peer that never registers makes the other fall back, counted.
// Loopback has no NAT to hold a SYN: an attempt succeeds only when both SYNs
// are in flight at once, so it gets 4 rounds of 3 s to ride out scheduling
// jitter on a loaded machine (2 rounds of 2 s failed once in CI).
func TestUpgradeLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRendezvous(t, ctx)
	a, b := [20]byte{'a'}, [20]byte{'b'}
	lo := netip.MustParseAddr("127.0.0.1")
	var ctr Counters
	type res struct {
		c   net.Conn
		err error
	}
	out := make(chan res, 2)
	for _, side := range []struct {
		self, peer [20]byte
		init       bool
	}{{a, b, true}, {b, a, false}} {
		go func() {
			c, err := Upgrade(ctx, UpgradeConfig{Rendezvous: s.Addr().String(), LocalIP: lo, Self: side.self, Peer: side.peer,
				Initiator: side.init, Rounds: 4, Window: 3 * time.Second, Pause: 100 * time.Millisecond, Counters: &ctr})
			out <- res{c, err}
		}()
	}
	r1, r2 := <-out, <-out
	if r1.err != nil || r2.err != nil {
		t.Fatalf("upgrade: %v / %v", r1.err, r2.err)
	}
	defer r1.c.Close()
	defer r2.c.Close()
	if r1.c.LocalAddr().String() != r2.c.RemoteAddr().String() {
		t.Fatalf("not one connection: %v %v", r1.c.LocalAddr(), r2.c.RemoteAddr())
	}
	go fmt.Fprint(r1.c, "direct")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(r2.c, buf); err != nil || string(buf) != "direct" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if ctr.Successes.Load() != 2 || s.Punches.Load() < 1 {
		t.Fatalf("successes %d, punches %d", ctr.Successes.Load(), s.Punches.Load())
	}
	// the peer never shows up: no PUNCH, fallback counted
	var lone Counters
	_, err := Upgrade(ctx, UpgradeConfig{Rendezvous: s.Addr().String(), LocalIP: lo, Self: a, Peer: [20]byte{'z'}, Initiator: true,
		Rounds: 2, Window: 200 * time.Millisecond, Pause: 10 * time.Millisecond, Counters: &lone})
	if !errors.Is(err, ErrPunchFailed) || lone.Attempts.Load() != 2 || lone.Fallbacks.Load() != 1 || lone.Successes.Load() != 0 {
		t.Fatalf("lone upgrade: %v, counters %d/%d/%d", err, lone.Attempts.Load(), lone.Successes.Load(), lone.Fallbacks.Load())
	}
}

// TestRendezvousObservedFirst: a peer's first frame from the rendezvous is
// its OBSERVED, even when another peer asks to be connected to it the
// instant it registers. Before the fix the rendezvous published a new
// registration before writing its OBSERVED, so a PUNCH could overtake it
// and the registration failed ("no OBSERVED (type 4)"); that cost a CI run
// a whole punch round.
func TestRendezvousObservedFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRendezvous(t, ctx)
	lo := netip.MustParseAddr("127.0.0.1")
	a, b := [20]byte{'a'}, [20]byte{'b'}
	ra, err := Register(ctx, s.Addr().String(), lo, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	stop := make(chan struct{})
	asking := make(chan struct{})
	go func() { // A asks for B without pause; ERRORs ("unknown peer") are dropped unread
		defer close(asking)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ra.Connect(b) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-asking }()
	const tries = 300
	for i := range tries {
		rb, err := Register(ctx, s.Addr().String(), lo, b)
		if err != nil {
			t.Fatalf("registration %d of %d: %v", i+1, tries, err)
		}
		rb.Close()
	}
	if s.Punches.Load() == 0 {
		t.Fatal("no PUNCH was sent: the test did not race CONNECT against REGISTER")
	}
	t.Logf("%d registrations, %d punches", tries, s.Punches.Load())
}
