package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var portBase atomic.Int32

func init() { portBase.Store(int32(24000 + rand.IntN(300)*20)) }

func testLogger() *slog.Logger {
	if os.Getenv("SHOAL_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startRelay runs a relay on loopback with 20 public ports.
func startRelay(t *testing.T, cfg Config) *Server {
	t.Helper()
	return startRelayCtx(t, context.Background(), cfg)
}

// startNATed runs a relay client for one torrent whose spliced conns go to onConn.
func startNATed(t *testing.T, relay string, ih [20]byte, onConn func(net.Conn)) *Client {
	t.Helper()
	return startNATedTorrents(t, relay, []Torrent{{InfoHash: ih}}, onConn)
}

// startNATedTorrents is startNATed with a whole torrent set.
func startNATedTorrents(t *testing.T, relay string, ts []Torrent, onConn func(net.Conn)) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{
		Relays: []string{relay}, BehindNAT: true, Logger: testLogger(),
		Torrents: func() []Torrent { return ts },
		OnConn:   onConn,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("relay client did not stop")
		}
	})
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publicAddr(t *testing.T, c *Client) netip.AddrPort {
	t.Helper()
	waitFor(t, "a public address", func() bool { return len(c.Addrs()) > 0 })
	return c.Addrs()[0]
}

func handshake(ih [20]byte) []byte {
	b := append([]byte{19}, "BitTorrent protocol"...)
	b = append(b, make([]byte, 8)...)
	b = append(b, ih[:]...)
	return append(b, "-XX0001-outsidepeer1"...)
}

// TestSplice: a plain TCP client sends a BitTorrent handshake to the public
// port; the NATed side receives it replayed, and 1 MiB goes each way intact.
func TestSplice(t *testing.T) {
	s := startRelay(t, Config{NoAnnounce: true})
	ih := [20]byte{0xAB, 1}
	const size = 1 << 20
	natSum := make(chan [32]byte, 1)
	remotes := make(chan net.Addr, 1)
	c := startNATed(t, s.Addr().String(), ih, func(nc net.Conn) {
		defer nc.Close()
		remotes <- nc.RemoteAddr()
		hs := make([]byte, 68)
		if _, err := io.ReadFull(nc, hs); err != nil || !bytes.Equal(hs, handshake(ih)) {
			t.Errorf("NATed side got handshake %q, %v", hs, err)
			return
		}
		go io.Copy(nc, io.LimitReader(stream(2), size))
		h := sha256.New()
		io.CopyN(h, nc, size)
		natSum <- [32]byte(h.Sum(nil))
	})
	pub := publicAddr(t, c)
	if pub.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("public address %v", pub)
	}
	out, err := net.Dial("tcp", pub.String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := out.Write(handshake(ih)); err != nil {
		t.Fatal(err)
	}
	go io.Copy(out, io.LimitReader(stream(1), size))
	h := sha256.New()
	if _, err := io.CopyN(h, out, size); err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(stream(2), size))
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("bytes from the NATed side differ")
	}
	want.Reset()
	io.Copy(want, io.LimitReader(stream(1), size))
	if got := <-natSum; !bytes.Equal(got[:], want.Sum(nil)) {
		t.Fatal("bytes from the outside differ")
	}
	if ra := <-remotes; ra.String() != out.LocalAddr().String() {
		t.Fatalf("NATed side sees remote %v, want the outside peer %v", ra, out.LocalAddr())
	}
	if st := s.Stats(); st.Spliced != 1 || st.Peers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRejectUnknown: a handshake for a torrent the peer did not register,
// or not a BitTorrent handshake at all, is closed without reaching the peer.
func TestRejectUnknown(t *testing.T) {
	s := startRelay(t, Config{NoAnnounce: true})
	var reached atomic.Int32
	c := startNATed(t, s.Addr().String(), [20]byte{1}, func(nc net.Conn) { reached.Add(1); nc.Close() })
	pub := publicAddr(t, c)
	for _, msg := range [][]byte{handshake([20]byte{2}), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + string(make([]byte, 60)))} {
		out, err := net.Dial("tcp", pub.String())
		if err != nil {
			t.Fatal(err)
		}
		out.SetDeadline(time.Now().Add(10 * time.Second))
		out.Write(msg)
		if n, err := out.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("read %d, %v: want the connection closed", n, err)
		}
		out.Close()
	}
	waitFor(t, "2 rejections", func() bool { return s.Stats().Rejected == 2 })
	if reached.Load() != 0 {
		t.Fatal("a rejected connection reached the NATed peer")
	}
}

// TestConnQuota: beyond MaxConnsPerPeer the relay closes new connections.
func TestConnQuota(t *testing.T) {
	s := startRelay(t, Config{NoAnnounce: true, MaxConnsPerPeer: 2})
	ih := [20]byte{3}
	var held sync.WaitGroup
	release := make(chan struct{})
	c := startNATed(t, s.Addr().String(), ih, func(nc net.Conn) {
		held.Add(1)
		defer held.Done()
		defer nc.Close()
		io.ReadFull(nc, make([]byte, 68))
		nc.Write([]byte("ok"))
		<-release
	})
	t.Cleanup(func() { close(release); held.Wait() }) // runs before the client's cleanup
	pub := publicAddr(t, c)
	dial := func() (net.Conn, error) {
		out, err := net.Dial("tcp", pub.String())
		if err != nil {
			return nil, err
		}
		out.SetDeadline(time.Now().Add(10 * time.Second))
		out.Write(handshake(ih))
		b := make([]byte, 2)
		if _, err := io.ReadFull(out, b); err != nil {
			out.Close()
			return nil, err
		}
		return out, nil
	}
	for i := 0; i < 2; i++ {
		out, err := dial()
		if err != nil {
			t.Fatalf("connection %d within quota: %v", i, err)
		}
		defer out.Close()
	}
	if out, err := dial(); err == nil {
		out.Close()
		t.Fatal("third connection spliced beyond MaxConnsPerPeer=2")
	}
	if st := s.Stats(); st.Refused != 1 || st.Conns != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPeerQuota: beyond MaxPeers a control connection gets ERROR(full).
func TestPeerQuota(t *testing.T) {
	s := startRelay(t, Config{NoAnnounce: true, MaxPeers: 1})
	c := startNATed(t, s.Addr().String(), [20]byte{4}, func(nc net.Conn) { nc.Close() })
	publicAddr(t, c)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := Message{Type: MsgHello}.Encode()
	nc.Write(append([]byte(Magic), b...))
	m, err := ReadMessage(nc)
	if err != nil || m.Type != MsgError || m.Code != ErrCodeFull {
		t.Fatalf("got %+v, %v; want ERROR full", m, err)
	}
}

// TestProbe: a peer that accepts connections is told it is reachable and
// gets no public port.
func TestProbe(t *testing.T) {
	s := startRelay(t, Config{NoAnnounce: true})
	ln := listenLoop(t, nil)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := NewClient(ClientConfig{
		Relays: []string{s.Addr().String()}, ListenPort: port,
		Torrents: func() []Torrent { return nil }, OnConn: func(nc net.Conn) { nc.Close() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the probe", c.Reachable)
	if len(c.Addrs()) != 0 || s.Stats().Peers != 0 {
		t.Fatalf("reachable peer registered anyway: %v %+v", c.Addrs(), s.Stats())
	}
}

// TestBandwidth: a 3 MiB transfer through a peer limited to 2 MiB/s cannot
// finish faster than the bucket allows (a lower bound only: a slow machine
// cannot make it fail). The measured rate is logged.
func TestBandwidth(t *testing.T) {
	const rate, size = 2 << 20, 3 << 20
	s := startRelay(t, Config{NoAnnounce: true, PeerRate: rate})
	ih := [20]byte{5}
	c := startNATed(t, s.Addr().String(), ih, func(nc net.Conn) {
		defer nc.Close()
		io.ReadFull(nc, make([]byte, 68))
		io.Copy(nc, io.LimitReader(stream(3), size))
	})
	out, err := net.Dial("tcp", publicAddr(t, c).String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	out.Write(handshake(ih))
	n, err := io.Copy(io.Discard, out)
	el := time.Since(start)
	if n != size {
		t.Fatalf("got %d bytes, %v", n, err)
	}
	t.Logf("%d bytes in %v: %.2f MiB/s (limit %.2f MiB/s)", n, el, float64(n)/el.Seconds()/(1<<20), float64(rate)/(1<<20))
	burst := float64(rate) / 10
	if min := time.Duration((float64(size) - burst) / rate * 0.9 * float64(time.Second)); el < min {
		t.Fatalf("transfer took %v, the limit allows no less than %v", el, min)
	}
}

// TestLoad: 300 outside connections at once against MaxConns=40: the relay
// never holds more than its quota, refuses the rest, and its goroutines and
// heap stay bounded; afterwards everything is released.
func TestLoad(t *testing.T) {
	const maxConns, clients = 40, 300
	s := startRelay(t, Config{NoAnnounce: true, MaxConns: maxConns, MaxConnsPerPeer: 100})
	ih := [20]byte{6}
	c := startNATed(t, s.Addr().String(), ih, func(nc net.Conn) {
		defer nc.Close()
		io.Copy(nc, nc) // echo, handshake included
	})
	pub := publicAddr(t, c)
	baseG := runtime.NumGoroutine()
	var peakConns, peakG atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := int64(s.Stats().Conns); n > peakConns.Load() {
				peakConns.Store(n)
			}
			if n := int64(runtime.NumGoroutine()); n > peakG.Load() {
				peakG.Store(n)
			}
		}
	}()
	var wg sync.WaitGroup
	var echoed atomic.Int32
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := net.Dial("tcp", pub.String())
			if err != nil {
				return
			}
			defer out.Close()
			out.SetDeadline(time.Now().Add(20 * time.Second))
			msg := append(handshake(ih), bytes.Repeat([]byte{byte(i)}, 64<<10)...)
			go out.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(out, got); err == nil && bytes.Equal(got, msg) {
				echoed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := s.Stats()
	t.Logf("echoed %d/%d, refused %d, peak conns %d, goroutines base %d peak %d, heap in use %d KiB",
		echoed.Load(), clients, st.Refused, peakConns.Load(), baseG, peakG.Load(), ms.HeapInuse>>10)
	if peakConns.Load() > maxConns {
		t.Fatalf("relay held %d connections, quota %d", peakConns.Load(), maxConns)
	}
	if int(echoed.Load())+int(st.Refused) != clients {
		t.Fatalf("echoed %d + refused %d != %d", echoed.Load(), st.Refused, clients)
	}
	if echoed.Load() == 0 {
		t.Fatal("nothing went through")
	}
	waitFor(t, "connections released", func() bool { return s.Stats().Conns == 0 })
}

// TestAnnounceOnBehalf: the relay announces the registered torrent to its
// tracker with the allocated port, and "completed" with left=0 as soon as the
// peer reports it seeds.
func TestAnnounceOnBehalf(t *testing.T) {
	type ann struct{ port, left, event, from string }
	got := make(chan ann, 16)
	tr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		got <- ann{q.Get("port"), q.Get("left"), q.Get("event"), host}
		w.Write([]byte("d8:intervali1800e5:peers0:e"))
	}))
	defer tr.Close()
	s := startRelay(t, Config{})
	ih := [20]byte{7}
	var left atomic.Int64
	left.Store(1000)
	c, err := NewClient(ClientConfig{
		Relays: []string{s.Addr().String()}, BehindNAT: true,
		Torrents: func() []Torrent {
			return []Torrent{{InfoHash: ih, Left: left.Load(), Trackers: []string{tr.URL + "/announce"}}}
		},
		OnConn: func(nc net.Conn) { nc.Close() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	pub := publicAddr(t, c)
	next := func() ann {
		select {
		case a := <-got:
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no announce")
		}
		return ann{}
	}
	if a := next(); a != (ann{strconv.Itoa(int(pub.Port())), "1000", "started", "127.0.0.1"}) {
		t.Fatalf("first announce %+v, public %v", a, pub)
	}
	left.Store(0)
	if a := next(); a.left != "0" || a.event != "completed" || a.port != strconv.Itoa(int(pub.Port())) {
		t.Fatalf("after completion %+v", a)
	}
	cancel()
	<-done
	if a := next(); a.event != "stopped" {
		t.Fatalf("after the peer left %+v", a)
	}
}

func stream(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

// listenLoop accepts on a loopback port until the test ends and hands each
// connection to serve, which must close it (nil: close it at once).
func listenLoop(t *testing.T, serve func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if serve == nil {
				c.Close()
				continue
			}
			serve(c)
		}
	}()
	return ln
}
