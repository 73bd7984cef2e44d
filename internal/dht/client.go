package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

// maxLookupTime bounds one iterative lookup.
const maxLookupTime = 30 * time.Second

// maxPeersCollected bounds the peers one GetPeers gathers.
const maxPeersCollected = 2000

// ErrNoNodes is returned when a lookup has nobody to ask.
var ErrNoNodes = errors.New("dht: no nodes to query (routing table empty and no bootstrap node answered)")

type reply struct {
	to  NodeInfo
	msg *krpc.Msg
	err error
}

// iterate runs a Lookup of target with method (find_node or get_peers),
// calling onReply for every answer. Extra seeds are added to the table's
// closest nodes.
func (s *Server) iterate(ctx context.Context, target ID, method string, extra []NodeInfo, onReply func(NodeInfo, *krpc.Return)) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, maxLookupTime)
	defer cancel()
	s.mu.Lock()
	seeds := s.table.Closest(target, K, s.now(), nil)
	s.mu.Unlock()
	seeds = append(seeds, extra...)
	if len(seeds) == 0 {
		return nil, ErrNoNodes
	}
	l := NewLookup(target, K, Alpha, seeds)
	// at most Alpha queries are in flight, so Alpha slots never block
	replies := make(chan reply, Alpha)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for {
		for _, n := range l.Next() {
			wg.Add(1)
			go func(n NodeInfo) {
				defer wg.Done()
				a := &krpc.Args{}
				if method == krpc.MethodGetPeers {
					a.InfoHash = target
				} else {
					a.Target = target
				}
				m, err := s.query(ctx, n.Addr, method, a)
				replies <- reply{to: n, msg: m, err: err}
			}(n)
		}
		if l.Done() || l.InFlight() == 0 {
			break
		}
		select {
		case r := <-replies:
			if r.err != nil {
				l.OnFailure(r.to.Addr)
				continue
			}
			rv := r.msg.R
			var nodes []NodeInfo
			for _, fam := range []struct {
				s  string
				v6 bool
			}{{rv.Nodes, false}, {rv.Nodes6, true}} {
				ns, err := krpc.ParseNodes(fam.s, fam.v6)
				if err != nil {
					continue
				}
				for _, n := range ns {
					if s.addrOK(n.Addr) && n.ID != s.id {
						nodes = append(nodes, n)
					}
				}
			}
			from := NodeInfo{ID: rv.ID, Addr: r.to.Addr}
			if onReply != nil {
				onReply(from, rv)
			}
			l.OnReply(from, nodes, rv.Token)
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, context.Canceled) {
				return l.Closest(), err
			}
			return l.Closest(), nil // time limit: use what we have
		}
	}
	res := l.Closest()
	if len(res) == 0 {
		return nil, ErrNoNodes
	}
	return res, nil
}

// GetPeers looks up infoHash and returns the peers the nodes on the way
// know of.
func (s *Server) GetPeers(ctx context.Context, infoHash [20]byte) ([]netip.AddrPort, error) {
	peers, _, err := s.getPeers(ctx, infoHash)
	return peers, err
}

func (s *Server) getPeers(ctx context.Context, infoHash [20]byte) ([]netip.AddrPort, []Result, error) {
	seen := map[netip.AddrPort]bool{}
	var peers []netip.AddrPort
	res, err := s.iterate(ctx, ID(infoHash), krpc.MethodGetPeers, nil, func(_ NodeInfo, r *krpc.Return) {
		for _, p := range krpc.ParsePeers(r.Values) {
			if !seen[p] && len(peers) < maxPeersCollected {
				seen[p] = true
				peers = append(peers, p)
			}
		}
	})
	if err != nil && len(peers) == 0 {
		return nil, nil, fmt.Errorf("dht: get_peers %x: %w", infoHash, err)
	}
	return peers, res, nil
}

// Announce looks up infoHash, then announces port (or, with impliedPort,
// the UDP source port) to the k closest nodes with their tokens. It returns
// the peers found on the way; it fails only if no node took the announce.
func (s *Server) Announce(ctx context.Context, infoHash [20]byte, port int, impliedPort bool) ([]netip.AddrPort, error) {
	if !impliedPort && (port <= 0 || port > 65535) {
		return nil, fmt.Errorf("dht: announce: bad port %d", port)
	}
	peers, res, err := s.getPeers(ctx, infoHash)
	if err != nil {
		return nil, err
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for _, r := range res {
		if r.Token == "" {
			continue
		}
		wg.Add(1)
		go func(r Result) {
			defer wg.Done()
			a := &krpc.Args{InfoHash: infoHash, Port: port, Token: r.Token}
			if impliedPort {
				a.ImpliedPort = 1
			}
			if _, err := s.query(ctx, r.Node.Addr, krpc.MethodAnnouncePeer, a); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else {
				s.log.Debug("dht: announce_peer", "to", r.Node.Addr, "err", err)
			}
		}(r)
	}
	wg.Wait()
	if ok == 0 {
		return peers, fmt.Errorf("dht: announce %x: no node accepted it", infoHash)
	}
	return peers, nil
}

// Ping asks the node at addr for its id.
func (s *Server) Ping(ctx context.Context, addr netip.AddrPort) ([20]byte, error) {
	m, err := s.query(ctx, addr, krpc.MethodPing, &krpc.Args{})
	if err != nil {
		return [20]byte{}, err
	}
	return m.R.ID, nil
}

// AddNode pings addr and adds the node to the routing table if it answers.
func (s *Server) AddNode(addr netip.AddrPort) {
	s.pingLater(addr)
}

// FindNode runs an iterative find_node lookup and returns the closest nodes
// that answered.
func (s *Server) FindNode(ctx context.Context, target [20]byte) ([]NodeInfo, error) {
	res, err := s.iterate(ctx, ID(target), krpc.MethodFindNode, nil, nil)
	out := make([]NodeInfo, len(res))
	for i, r := range res {
		out[i] = r.Node
	}
	return out, err
}

// SampleInfohashes sends one BEP 51 query to addr.
func (s *Server) SampleInfohashes(ctx context.Context, addr netip.AddrPort, target [20]byte) (hashes [][20]byte, nodes []netip.AddrPort, interval time.Duration, num int, err error) {
	m, err := s.query(ctx, addr, krpc.MethodSampleInfohashes, &krpc.Args{Target: target})
	if err != nil {
		return nil, nil, 0, 0, err
	}
	r := m.R
	hashes, err = krpc.ParseSamples(r.Samples)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("dht: sample_infohashes from %s: %w", addr, err)
	}
	for _, fam := range []bool{false, true} {
		s := r.Nodes
		if fam {
			s = r.Nodes6
		}
		ns, _ := krpc.ParseNodes(s, fam)
		for _, n := range ns {
			nodes = append(nodes, n.Addr)
		}
	}
	if r.Interval != nil {
		interval = time.Duration(max(0, min(*r.Interval, 21600))) * time.Second
	}
	if r.Num != nil {
		num = *r.Num
	}
	return hashes, nodes, interval, num, nil
}

// resolveBootstrap turns HOST:PORT strings into addresses we may query.
func (s *Server) resolveBootstrap(ctx context.Context) []NodeInfo {
	var out []NodeInfo
	for _, hp := range s.cfg.Bootstrap {
		host, ps, err := net.SplitHostPort(hp)
		if err != nil {
			s.log.Warn("dht: bad bootstrap address", "addr", hp, "err", err)
			continue
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			s.log.Warn("dht: bad bootstrap port", "addr", hp)
			continue
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ips, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
			cancel()
			if err != nil {
				s.log.Warn("dht: resolve bootstrap", "host", host, "err", err)
				continue
			}
		}
		for _, ip := range ips {
			a := netip.AddrPortFrom(ip.Unmap(), uint16(port))
			if s.addrOK(a) {
				out = append(out, NodeInfo{Addr: a})
			}
		}
	}
	return out
}
