package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
)

// Timeouts of the relay protocol.
const (
	HelloTimeout     = 10 * time.Second // from accept to the first frame on the main port
	HandshakeTimeout = 10 * time.Second // an outside peer must send its 68-byte handshake within this
	DataTimeout      = 10 * time.Second // the NATed peer must answer CONNECT with DATA within this
	PingInterval     = 30 * time.Second // each side pings an idle control connection
	ReadTimeout      = 3 * PingInterval // a control connection silent this long is dead
	IdleTimeout      = 5 * time.Minute  // a spliced connection with no byte either way is closed
	ProbeTimeout     = 3 * time.Second  // reachability dial-back
)

// Default quotas.
const (
	DefaultMaxPeers        = 100
	DefaultMaxConnsPerPeer = 64
	DefaultMaxConns        = 1024
	DefaultPeerRate        = 8 << 20  // bytes/s per relayed peer (both directions together)
	DefaultTotalRate       = 64 << 20 // bytes/s for the whole relay
	maxUnidentified        = 256      // main-port connections still sending their first frame
)

// spliceBuf is the copy buffer of each direction of a splice: a splice holds
// 2*spliceBuf bytes, so memory is bounded by MaxConns*2*spliceBuf.
const spliceBuf = 32 << 10

// handshakeLen is the BEP 3 handshake: pstrlen, "BitTorrent protocol",
// reserved [8], info-hash [20], peer id [20].
const handshakeLen = 68

// Config configures a relay Server.
type Config struct {
	Listen string // main port, where NATed peers connect (control and data), e.g. ":7000"
	// PortMin..PortMax is the range of public ports, one per relayed peer.
	PortMin, PortMax uint16
	// PublicIP is the address told to peers and trackers. Zero = the local
	// address each control connection arrived on (right for a host with one
	// public address); when set it is also sent to trackers as ip=.
	PublicIP netip.Addr
	// Quotas; 0 = default, negative rate = unlimited.
	MaxPeers        int   // relayed peers at once (each holds a public port)
	MaxConnsPerPeer int   // spliced or pending connections per relayed peer
	MaxConns        int   // spliced or pending connections in total
	PeerRate        int64 // bytes/s per relayed peer, both directions together
	TotalRate       int64 // bytes/s for the whole relay
	// NoAnnounce stops the relay from announcing peers to their trackers
	// and into the DHT.
	NoAnnounce bool
	// DirectoryTrackers are tracker URLs the relay lists itself at, under
	// DirectoryHash with its main port (see directory.go).
	DirectoryTrackers []string
	// DHT, when set, is a DHT node the relay lists itself in (DirectoryHash)
	// and announces its relayed peers' torrents into (dhtannounce.go). It
	// is run and closed by the caller.
	DHT     DHT
	Tracker *tracker.Client // nil = a default client
	Logger  *slog.Logger    // nil = discard
}

// Stats counts what a relay did since it started.
type Stats struct {
	Peers     int   // relayed peers registered now
	Conns     int   // spliced or pending connections now
	Spliced   int64 // connections spliced so far
	Refused   int64 // outside connections refused by a connection quota
	Rejected  int64 // outside connections with a bad handshake or unknown info-hash
	PeersFull int64 // control connections refused by MaxPeers or an empty port range
	Bytes     int64 // bytes relayed, both directions
}

// Server is a relay. Create it with NewServer, run it with Serve.
type Server struct {
	// static after construction
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	host   string // host part of Listen, for the per-peer listeners
	total  *bucket
	unid   chan struct{} // semaphore for unidentified main-port connections
	dhtSem chan struct{} // semaphore for DHT announces in flight

	mu       sync.Mutex // guards the fields below
	peers    map[*relayedPeer]struct{}
	ports    map[uint16]bool // allocated public ports
	pending  map[[SessionIDSize]byte]chan net.Conn
	conns    int
	nextPort uint16

	spliced, refused, rejected, peersFull, bytes atomic.Int64
}

// NewServer validates cfg, fills in defaults and opens the main listener.
func NewServer(cfg Config) (*Server, error) {
	if cfg.PortMin == 0 || cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("relay: bad public port range %d-%d", cfg.PortMin, cfg.PortMax)
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxConnsPerPeer == 0 {
		cfg.MaxConnsPerPeer = DefaultMaxConnsPerPeer
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.PeerRate == 0 {
		cfg.PeerRate = DefaultPeerRate
	}
	if cfg.TotalRate == 0 {
		cfg.TotalRate = DefaultTotalRate
	}
	if cfg.MaxPeers < 0 || cfg.MaxConnsPerPeer < 0 || cfg.MaxConns < 0 {
		return nil, errors.New("relay: negative connection quota")
	}
	if cfg.Tracker == nil {
		cfg.Tracker = &tracker.Client{}
	}
	for _, u := range cfg.DirectoryTrackers {
		if !tracker.Supported(u) {
			return nil, fmt.Errorf("relay: directory tracker %q: want an http, https or udp announce URL", u)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen address %q: %w", cfg.Listen, err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %s: %w", cfg.Listen, err)
	}
	return &Server{
		cfg: cfg, log: log, ln: ln, host: host,
		total:    newBucket(cfg.TotalRate, time.Now()),
		unid:     make(chan struct{}, maxUnidentified),
		dhtSem:   make(chan struct{}, dhtAnnouncesAtOnce),
		peers:    map[*relayedPeer]struct{}{},
		ports:    map[uint16]bool{},
		pending:  map[[SessionIDSize]byte]chan net.Conn{},
		nextPort: cfg.PortMin,
	}, nil
}

// Addr is the main listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	peers, conns := len(s.peers), s.conns
	s.mu.Unlock()
	return Stats{
		Peers: peers, Conns: conns, Spliced: s.spliced.Load(), Refused: s.refused.Load(),
		Rejected: s.rejected.Load(), PeersFull: s.peersFull.Load(), Bytes: s.bytes.Load(),
	}
}

// Serve accepts NATed peers' connections until ctx ends; then it closes
// every listener and connection and waits for its goroutines.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	if len(s.cfg.DirectoryTrackers) > 0 || s.cfg.DHT != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.announceDirectory(ctx)
		}()
	}
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("relay accept", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case s.unid <- struct{}{}:
		default:
			nc.Close() // too many connections that have not said who they are
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleMain(ctx, nc)
		}()
	}
}

// handleMain reads a main-port connection's first frame and dispatches it.
func (s *Server) handleMain(ctx context.Context, nc net.Conn) {
	nc.SetDeadline(time.Now().Add(HelloTimeout))
	err := ReadMagic(nc)
	var m Message
	if err == nil {
		m, err = ReadMessage(nc)
	}
	<-s.unid
	if err != nil {
		s.log.Debug("relay: first frame", "from", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	switch m.Type {
	case MsgHello:
		s.serveControl(ctx, nc, m)
	case MsgData:
		nc.SetDeadline(time.Time{})
		s.mu.Lock()
		ch := s.pending[m.Session]
		delete(s.pending, m.Session)
		if ch != nil {
			ch <- nc // cap 1 and one sender: never blocks; under mu so the waiter's cleanup sees it
		}
		s.mu.Unlock()
		if ch == nil {
			s.log.Debug("relay: DATA for unknown session", "from", nc.RemoteAddr())
			nc.Close()
		}
	default:
		WriteMessage(nc, Message{Type: MsgError, Code: ErrCodeProtocol, Text: "expected HELLO or DATA"})
		nc.Close()
	}
}

// serveControl registers a NATed peer and serves its control connection.
func (s *Server) serveControl(ctx context.Context, nc net.Conn, hello Message) {
	defer nc.Close()
	remote, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	log := s.log.With("peer", remote)
	if hello.Flags&FlagProbe != 0 && hello.Port != 0 && s.probe(ctx, netip.AddrPortFrom(remote.Addr(), hello.Port)) {
		log.Info("relay: peer is reachable directly")
		WriteMessage(nc, Message{Type: MsgWelcome, Addr: netip.AddrPortFrom(remote.Addr().Unmap(), hello.Port), Flags: FlagReachable})
		return
	}
	public := s.cfg.PublicIP
	if !public.IsValid() {
		local, _ := netip.ParseAddrPort(nc.LocalAddr().String())
		public = local.Addr().Unmap()
	}
	p, code, err := s.addPeer(ctx, nc, hello.PeerID, public)
	if err != nil {
		s.peersFull.Add(1)
		log.Info("relay: refusing peer", "err", err)
		WriteMessage(nc, Message{Type: MsgError, Code: code, Text: err.Error()})
		return
	}
	defer s.removePeer(p)
	log = log.With("public", p.public)
	log.Info("relay: peer registered")
	if err := p.send(Message{Type: MsgWelcome, Addr: p.public}); err != nil {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer p.cancel() // stops the acceptor, the pinger, splices and announcers before wg.Wait
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.acceptLoop(&wg)
	}()
	go func() {
		defer wg.Done()
		p.pingLoop()
	}()
	for {
		nc.SetReadDeadline(time.Now().Add(ReadTimeout))
		m, err := ReadMessage(nc)
		if err != nil {
			if p.ctx.Err() == nil {
				log.Info("relay: control connection closed", "err", err)
			}
			return
		}
		switch m.Type {
		case MsgTorrents:
			p.setTorrents(m.Torrents, &wg)
		case MsgPing:
			if p.send(Message{Type: MsgPong}) != nil {
				return
			}
		case MsgPong:
		default:
			p.send(Message{Type: MsgError, Code: ErrCodeProtocol, Text: "unexpected " + m.Type.String()})
			return
		}
	}
}

// probe reports whether a TCP connection to ap succeeds.
func (s *Server) probe(ctx context.Context, ap netip.AddrPort) bool {
	d := net.Dialer{Timeout: ProbeTimeout}
	c, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// addPeer checks the peer quota, allocates a public port and listens on it.
func (s *Server) addPeer(ctx context.Context, ctrl net.Conn, peerID [20]byte, public netip.Addr) (*relayedPeer, uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) >= s.cfg.MaxPeers {
		return nil, ErrCodeFull, fmt.Errorf("relay full: %d peers", len(s.peers))
	}
	n := int(s.cfg.PortMax-s.cfg.PortMin) + 1
	for i := 0; i < n; i++ {
		port := s.nextPort
		if s.nextPort == s.cfg.PortMax {
			s.nextPort = s.cfg.PortMin
		} else {
			s.nextPort++
		}
		if s.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(s.host, strconv.Itoa(int(port))))
		if err != nil {
			s.log.Debug("relay: public port busy", "port", port, "err", err)
			continue
		}
		s.ports[port] = true
		p := &relayedPeer{
			s: s, ctrl: ctrl, ln: ln, peerID: peerID,
			public:   netip.AddrPortFrom(public, port),
			bucket:   newBucket(s.cfg.PeerRate, time.Now()),
			torrents: map[[20]byte]*announced{},
		}
		p.ctx, p.cancel = context.WithCancel(ctx)
		s.peers[p] = struct{}{}
		return p, 0, nil
	}
	return nil, ErrCodeNoPort, fmt.Errorf("no free public port in %d-%d", s.cfg.PortMin, s.cfg.PortMax)
}

func (s *Server) removePeer(p *relayedPeer) {
	p.cancel()
	p.ln.Close()
	s.mu.Lock()
	delete(s.peers, p)
	delete(s.ports, p.public.Port())
	s.mu.Unlock()
}

// acquireConn takes one connection slot of p and of the relay.
func (s *Server) acquireConn(p *relayedPeer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns >= s.cfg.MaxConns || p.conns >= s.cfg.MaxConnsPerPeer {
		return false
	}
	s.conns++
	p.conns++
	return true
}

func (s *Server) releaseConn(p *relayedPeer) {
	s.mu.Lock()
	s.conns--
	p.conns--
	s.mu.Unlock()
}

// relayedPeer is one registered NATed peer.
type relayedPeer struct {
	// static after construction
	s      *Server
	ctrl   net.Conn
	ln     net.Listener // the public port
	peerID [20]byte
	public netip.AddrPort
	bucket *bucket
	ctx    context.Context // ends when the control connection ends
	cancel context.CancelFunc

	wmu sync.Mutex // serialises writes to ctrl

	conns int // guarded by s.mu

	tmu      sync.Mutex // guards torrents
	torrents map[[20]byte]*announced
}

func (p *relayedPeer) send(m Message) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.ctrl.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := WriteMessage(p.ctrl, m)
	if err != nil {
		p.cancel()
		p.ctrl.Close()
	}
	return err
}

func (p *relayedPeer) pingLoop() {
	t := time.NewTicker(PingInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			p.ctrl.Close() // unblocks the control reader
			return
		case <-t.C:
			if p.send(Message{Type: MsgPing}) != nil {
				return
			}
		}
	}
}

func (p *relayedPeer) hasTorrent(ih [20]byte) bool {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	return p.torrents[ih] != nil
}

// acceptLoop takes outside connections on the peer's public port.
func (p *relayedPeer) acceptLoop(wg *sync.WaitGroup) {
	stop := context.AfterFunc(p.ctx, func() { p.ln.Close() })
	defer stop()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !p.s.acquireConn(p) {
			p.s.refused.Add(1)
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.s.releaseConn(p)
			p.handleOutside(nc)
		}()
	}
}

// handleOutside reads an outside peer's handshake, asks the NATed peer for a
// data connection and splices the two.
func (p *relayedPeer) handleOutside(nc net.Conn) {
	defer nc.Close()
	s := p.s
	var hs [handshakeLen]byte
	nc.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	if _, err := io.ReadFull(nc, hs[:]); err != nil {
		s.rejected.Add(1)
		return
	}
	var ih [20]byte
	copy(ih[:], hs[28:48])
	if hs[0] != 19 || string(hs[1:20]) != "BitTorrent protocol" || !p.hasTorrent(ih) {
		s.rejected.Add(1)
		return
	}
	nc.SetReadDeadline(time.Time{})
	var sid [SessionIDSize]byte
	rand.Read(sid[:])
	ch := make(chan net.Conn, 1)
	s.mu.Lock()
	s.pending[sid] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, sid)
		s.mu.Unlock()
		select {
		case late := <-ch: // DATA arrived after we gave up
			late.Close()
		default:
		}
	}()
	remote, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	if p.send(Message{Type: MsgConnect, Session: sid, Addr: netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())}) != nil {
		return
	}
	timer := time.NewTimer(DataTimeout)
	defer timer.Stop()
	var data net.Conn
	select {
	case data = <-ch:
	case <-timer.C:
		s.log.Debug("relay: no DATA for session", "public", p.public)
		return
	case <-p.ctx.Done():
		return
	}
	defer data.Close()
	data.SetWriteDeadline(time.Now().Add(HandshakeTimeout))
	if _, err := data.Write(hs[:]); err != nil {
		return
	}
	data.SetWriteDeadline(time.Time{})
	s.spliced.Add(1)
	n := splice(p.ctx, nc, data, p.bucket, s.total)
	s.bytes.Add(n + handshakeLen)
}

// splice copies both ways between a and b until either side ends or ctx is
// done, charging every byte to the buckets. It returns the bytes copied.
func splice(ctx context.Context, a, b net.Conn, buckets ...*bucket) int64 {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		n.Add(pump(ctx, b, a, buckets))
		cancel()
		close(done)
	}()
	n.Add(pump(ctx, a, b, buckets))
	cancel()
	<-done
	return n.Load()
}

// pump copies src to dst through one fixed buffer.
func pump(ctx context.Context, dst, src net.Conn, buckets []*bucket) int64 {
	buf := make([]byte, spliceBuf)
	var total int64
	for {
		src.SetReadDeadline(time.Now().Add(IdleTimeout))
		n, err := src.Read(buf)
		if n > 0 {
			if wait(ctx, n, buckets...) != nil {
				return total
			}
			dst.SetWriteDeadline(time.Now().Add(IdleTimeout))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total
			}
			total += int64(n)
		}
		if err != nil {
			return total
		}
	}
}
