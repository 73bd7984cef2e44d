package dht

import (
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

// Response size bounds, so the node cannot amplify traffic: a response
// carries at most K nodes per family and at most these many peers, and is
// trimmed until it fits krpc.SendBudget.
const (
	maxValues4 = 100
	maxValues6 = 40
	maxSamples = 20
	// sampleInterval is the BEP 51 "interval": how long a caller should wait
	// before asking us again for samples.
	sampleInterval = 300
)

// handleQuery answers one query (called by the read loop).
func (s *Server) handleQuery(m *krpc.Msg, from netip.AddrPort) {
	if !s.addrOK(from) {
		return
	}
	now := s.now()
	s.mu.Lock()
	s.stats.QueriesIn++
	if !s.limiter.allow(from.Addr(), now) {
		s.stats.RateLimited++
		s.mu.Unlock()
		return
	}
	a := m.A
	id := ID(a.ID)
	wantPing := false
	if m.RO == 0 && id != (ID{}) {
		s.table.Seen(id, from, now, false)
		wantPing = s.table.WantsNode(id, now) && s.acceptNode(id, from)
	}
	r := &krpc.Return{ID: s.id}
	var kerr *krpc.Error
	switch m.Q {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		if a.Target == ([20]byte{}) {
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "missing target"}
			break
		}
		s.addNodes(r, ID(a.Target), from, a.Want, now)
	case krpc.MethodGetPeers:
		if a.InfoHash == ([20]byte{}) {
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "missing info_hash"}
			break
		}
		ih := ID(a.InfoHash)
		r.Token = s.tok.issue(from.Addr(), now, s.rng)
		v4 := s.peers.get(ih, false, maxValues4, now, s.rng)
		v6 := s.peers.get(ih, true, maxValues6, now, s.rng)
		r.Values = krpc.EncodePeers(append(v4, v6...))
		s.addNodes(r, ih, from, a.Want, now)
	case krpc.MethodAnnouncePeer:
		port := a.Port
		if a.ImpliedPort != 0 {
			port = int(from.Port())
		}
		switch {
		case a.InfoHash == ([20]byte{}):
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "missing info_hash"}
		case port <= 0 || port > 65535:
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "bad port"}
		case !s.tok.valid(a.Token, from.Addr(), now, s.rng):
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "bad token"}
		default:
			s.peers.add(ID(a.InfoHash), netip.AddrPortFrom(from.Addr(), uint16(port)), now)
		}
	case krpc.MethodSampleInfohashes:
		if a.Target == ([20]byte{}) {
			kerr = &krpc.Error{Code: krpc.ErrCodeProtocol, Msg: "missing target"}
			break
		}
		hs, num := s.peers.sample(maxSamples, s.rng)
		var b []byte
		for _, h := range hs {
			b = append(b, h[:]...)
		}
		r.Samples = string(b)
		ival := sampleInterval
		r.Interval, r.Num = &ival, &num
		s.addNodes(r, ID(a.Target), from, a.Want, now)
	default:
		kerr = &krpc.Error{Code: krpc.ErrCodeMethod, Msg: "method unknown"}
	}
	s.mu.Unlock()

	resp := &krpc.Msg{T: m.T, Y: krpc.KindResponse, R: r, IP: string(krpc.AppendAddr(nil, from))}
	if kerr != nil {
		resp = &krpc.Msg{T: m.T, Y: krpc.KindError, E: kerr}
	}
	s.sendBounded(resp, from)
	if wantPing {
		s.pingLater(from)
	}
}

// addNodes fills "nodes"/"nodes6" with the K closest to target (mu held).
// BEP 32: "want" picks the families; by default the querier's own.
func (s *Server) addNodes(r *krpc.Return, target ID, from netip.AddrPort, want []string, now time.Time) {
	w4, w6 := slices.Contains(want, "n4"), slices.Contains(want, "n6")
	if !w4 && !w6 {
		w4, w6 = from.Addr().Is4(), !from.Addr().Is4()
	}
	if w4 {
		r.Nodes = krpc.EncodeNodes(s.table.Closest(target, K, now, func(n NodeInfo) bool { return n.Addr.Addr().Is4() }), false)
	}
	if w6 {
		r.Nodes6 = krpc.EncodeNodes(s.table.Closest(target, K, now, func(n NodeInfo) bool { return !n.Addr.Addr().Is4() }), true)
	}
}

// sendBounded sends m, dropping peers until it fits krpc.SendBudget.
func (s *Server) sendBounded(m *krpc.Msg, to netip.AddrPort) {
	for {
		b, err := krpc.Encode(m)
		if err != nil {
			return
		}
		if len(b) <= krpc.SendBudget || m.R == nil || len(m.R.Values) == 0 {
			if len(b) <= krpc.MaxPacketSize {
				s.conn.WriteToUDPAddrPort(b, to)
			}
			return
		}
		m.R.Values = m.R.Values[:len(m.R.Values)*3/4]
	}
}

// pingLater pings a querier that would fit in the table, so it enters once
// it has answered. At most cap(s.pings) run at once; more are dropped.
func (s *Server) pingLater(to netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // Close waits for wg: no Add after it began
		return
	}
	select {
	case s.pings <- struct{}{}:
	default:
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.pings }()
		s.query(s.ctx, to, krpc.MethodPing, &krpc.Args{})
	}()
}
