package dht

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

// DefaultBootstrap are the public routers used when Config.Bootstrap is nil.
// Tests always pass loopback nodes instead.
var DefaultBootstrap = []string{"router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881"}

// Config configures a Server.
type Config struct {
	Listen        string       // "127.0.0.1:0" etc.; ":6881" when empty
	Bootstrap     []string     // HOST:PORT; DefaultBootstrap only if nil
	StateFile     string       // routing table saved on Close and loaded on start ("" = none)
	AllowLoopback bool         // accept 127/8 and private nodes in routing (tests, private networks)
	Logger        *slog.Logger // nil: discard
	NodeID        *[20]byte    // optional fixed id; otherwise BEP 42 from the external IP if known, else random

	// ExternalIP, when valid, is our public address: the node id is derived
	// from it (BEP 42). Learned from other nodes' "ip" fields and kept in
	// the state file when unset.
	ExternalIP netip.Addr
	// EnforceNodeID refuses public nodes whose id does not match their IP
	// (BEP 42) in the routing table. Off by default, like libtorrent, since
	// many deployed nodes do not comply; local addresses are always exempt.
	EnforceNodeID bool
	// QueryTimeout bounds one query (default 2 s).
	QueryTimeout time.Duration
	// RateLimit is the queries per second answered per source IP (default
	// 20, burst 5x); negative disables the limit.
	RateLimit float64
	// Maintenance is the period of pings, refreshes and expiry (default 1 min).
	Maintenance time.Duration
	// Conn, when set, is used instead of listening on Listen (in-memory tests).
	Conn PacketConn
}

// PacketConn is what the server needs of a UDP socket; *net.UDPConn has it.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// Server is a DHT node on one UDP socket. Its mutable state is guarded by
// mu; the read loop and the maintenance loop are owned by the server (the
// read loop ends on Close, the maintenance loop when Start's context ends),
// and every query waits on its own reply channel.
type Server struct {
	// static after construction
	cfg    Config
	conn   PacketConn
	addr   netip.AddrPort
	id     ID
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pings  chan struct{} // bounds pings of unknown queriers

	mu       sync.Mutex
	table    *Table                   // guarded by mu
	rng      *rand.Rand               // guarded by mu
	tok      tokens                   // guarded by mu
	peers    peerStore                // guarded by mu
	limiter  *rateLimiter             // guarded by mu
	pending  map[string]*pendingQuery // guarded by mu; by transaction id
	nextTID  uint16                   // guarded by mu
	extVotes map[netip.Addr]int       // guarded by mu; "ip" fields seen
	extIP    netip.Addr               // guarded by mu
	saved    []NodeInfo               // guarded by mu; nodes from the state file
	closed   bool                     // guarded by mu
	stats    Stats                    // guarded by mu
}

// Stats counts server events.
type Stats struct {
	QueriesIn, QueriesOut, Timeouts, RateLimited, BadPackets int
}

type pendingQuery struct {
	to netip.AddrPort
	ch chan *krpc.Msg // buffered 1
}

// New listens and starts the read loop. Call Start to join the DHT and
// Close to stop.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":6881"
	}
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = DefaultBootstrap
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 2 * time.Second
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 20
	}
	if cfg.Maintenance <= 0 {
		cfg.Maintenance = time.Minute
	}
	var seed [16]byte
	crand.Read(seed[:])
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		rng:      rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		limiter:  newRateLimiter(cfg.RateLimit, 5*cfg.RateLimit, 10000),
		pending:  map[string]*pendingQuery{},
		extVotes: map[netip.Addr]int{},
		pings:    make(chan struct{}, 16),
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		s.log.Warn("dht: ignoring state file", "file", cfg.StateFile, "err", err)
	}
	if cfg.Conn != nil {
		s.conn = cfg.Conn
	} else {
		ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("dht: listen address %q: %w", cfg.Listen, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("dht: listen: %w", err)
		}
		s.conn = c
		s.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
		s.addr = netip.AddrPortFrom(s.addr.Addr().Unmap(), s.addr.Port())
	}
	if cfg.Conn != nil {
		if ap, err := netip.ParseAddrPort(cfg.Listen); err == nil {
			s.addr = ap
		}
	}
	s.id = s.chooseID(st)
	s.table = NewTable(s.id, K)
	s.table.Accept = s.acceptNode
	if st != nil {
		s.saved = st.nodes
		if !s.cfg.ExternalIP.IsValid() {
			s.extIP = st.externalIP
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.readLoop()
	s.log.Info("dht: listening", "addr", s.addr, "id", fmt.Sprintf("%x", s.id))
	return s, nil
}

// chooseID picks the node id: fixed, then BEP 42 from a known public IP,
// then the saved id, then random.
func (s *Server) chooseID(st *state) ID {
	if s.cfg.NodeID != nil {
		return ID(*s.cfg.NodeID)
	}
	ext := s.cfg.ExternalIP
	if !ext.IsValid() && st != nil {
		ext = st.externalIP
	}
	if !ext.IsValid() && !BEP42Exempt(s.addr.Addr()) {
		ext = s.addr.Addr()
	}
	if st != nil && (!ext.IsValid() || BEP42Valid(st.id, ext)) {
		return st.id
	}
	if ext.IsValid() && !BEP42Exempt(ext) {
		return BEP42ID(ext, s.rng)
	}
	return RandomID(s.rng)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// ID returns the node id.
func (s *Server) ID() [20]byte { return s.id }

// NumNodes returns the number of nodes in the routing table.
func (s *Server) NumNodes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Len()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Nodes returns the routing table's nodes.
func (s *Server) Nodes() []NodeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []NodeInfo
	for _, n := range s.table.Nodes() {
		out = append(out, n.info())
	}
	return out
}

// Close stops the server, saves the routing table and closes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	st := &state{id: s.id, externalIP: s.extIP}
	for _, n := range s.table.Nodes() {
		st.nodes = append(st.nodes, n.info())
	}
	if len(st.nodes) == 0 {
		st.nodes = s.saved // never lost: a node that failed to join keeps its old contacts
	}
	s.mu.Unlock()
	s.cancel()
	err := s.conn.Close()
	s.wg.Wait()
	if serr := saveState(s.cfg.StateFile, st); serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("dht: close: %w", err)
	}
	return nil
}

// addrOK reports whether we talk to addr at all: a real unicast address of
// a family our socket serves, and local addresses only with AllowLoopback.
func (s *Server) addrOK(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	if !ip.IsValid() || a.Port() == 0 || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	if !s.cfg.AllowLoopback && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()) {
		return false
	}
	local := s.addr.Addr()
	if local.IsValid() && !local.IsUnspecified() && local.Is4() != ip.Is4() {
		return false
	}
	if local.IsValid() && local.Is4() && !ip.Is4() {
		return false
	}
	return true
}

// acceptNode is the routing table's filter (called with mu held).
func (s *Server) acceptNode(id ID, a netip.AddrPort) bool {
	if !s.addrOK(a) {
		return false
	}
	if s.cfg.EnforceNodeID && !BEP42Valid(id, a.Addr()) {
		return false
	}
	return true
}

func (s *Server) now() time.Time { return time.Now() }

func (s *Server) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, krpc.MaxPacketSize+1)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("dht: read", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		m, err := krpc.Decode(buf[:n])
		if err != nil {
			s.mu.Lock()
			s.stats.BadPackets++
			s.mu.Unlock()
			continue
		}
		switch m.Y {
		case krpc.KindQuery:
			s.handleQuery(m, from)
		default:
			s.mu.Lock()
			p, ok := s.pending[m.T]
			if ok && p.to == from {
				delete(s.pending, m.T)
				p.ch <- m
			}
			s.mu.Unlock()
		}
	}
}

func (s *Server) send(m *krpc.Msg, to netip.AddrPort) error {
	b, err := krpc.Encode(m)
	if err != nil {
		return err
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("dht: send to %s: %w", to, err)
	}
	return nil
}

// ErrTimeout is returned when a node does not answer a query in time.
var ErrTimeout = errors.New("dht: query timed out")

// query sends one query and waits for its answer. The routing table learns
// of the answer or the timeout.
func (s *Server) query(ctx context.Context, to netip.AddrPort, method string, a *krpc.Args) (*krpc.Msg, error) {
	if !s.addrOK(to) {
		return nil, fmt.Errorf("dht: refusing to query %s", to)
	}
	a.ID = s.id
	p := &pendingQuery{to: to, ch: make(chan *krpc.Msg, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	var tid string
	for {
		s.nextTID++
		tid = string(binary.BigEndian.AppendUint16(nil, s.nextTID))
		if _, busy := s.pending[tid]; !busy {
			break
		}
	}
	s.pending[tid] = p
	s.stats.QueriesOut++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.pending[tid] == p {
			delete(s.pending, tid)
		}
		s.mu.Unlock()
	}()
	if err := s.send(&krpc.Msg{T: tid, Y: krpc.KindQuery, Q: method, A: a}, to); err != nil {
		return nil, err
	}
	timer := time.NewTimer(s.cfg.QueryTimeout)
	defer timer.Stop()
	select {
	case m := <-p.ch:
		if m.Y == krpc.KindError {
			return nil, fmt.Errorf("dht: %s from %s: %w", method, to, m.E)
		}
		s.mu.Lock()
		s.table.Seen(m.R.ID, to, s.now(), true)
		s.voteExternal(m.IP)
		s.mu.Unlock()
		return m, nil
	case <-timer.C:
		s.mu.Lock()
		s.stats.Timeouts++
		if n, ok := s.nodeAt(to); ok {
			s.table.Failed(n, to, s.now())
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("dht: %s to %s: %w", method, to, ErrTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	}
}

// nodeAt finds the table entry at addr (mu held). Tables are small enough
// that a scan over the nodes is cheap next to a network timeout.
func (s *Server) nodeAt(a netip.AddrPort) (ID, bool) {
	for _, n := range s.table.byID {
		if n.Addr == a {
			return n.ID, true
		}
	}
	return ID{}, false
}

// voteExternal counts a BEP 42 "ip" field (mu held); once one public
// address has 5 votes it becomes our known external IP, saved with the
// state so the next start derives a BEP 42 id from it.
func (s *Server) voteExternal(compact string) {
	if compact == "" || s.cfg.ExternalIP.IsValid() {
		return
	}
	a, err := krpc.ParseAddr([]byte(compact))
	if err != nil || BEP42Exempt(a.Addr()) {
		return
	}
	ip := a.Addr().Unmap()
	if len(s.extVotes) > 64 {
		clear(s.extVotes)
	}
	s.extVotes[ip]++
	if s.extVotes[ip] >= 5 && s.extIP != ip {
		s.extIP = ip
		s.log.Info("dht: external address", "ip", ip, "id_matches_bep42", BEP42Valid(s.id, ip))
	}
}
