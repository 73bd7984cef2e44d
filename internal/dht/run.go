package dht

import (
	"context"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

// Start joins the DHT (from the saved routing table if there is one, else
// from the bootstrap nodes) and then runs maintenance every
// Config.Maintenance until ctx ends: pinging questionable nodes, refreshing
// stale buckets, expiring announced peers, and re-joining when the table
// has emptied. It returns nil when ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // Close also ends Start
		select {
		case <-s.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	s.bootstrap(ctx)
	t := time.NewTicker(s.cfg.Maintenance)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.maintain(ctx)
		}
	}
}

// Bootstrap joins the DHT once: a find_node lookup of our own id seeded
// with the saved nodes, falling back to the bootstrap nodes.
func (s *Server) Bootstrap(ctx context.Context) error {
	return s.bootstrap(ctx)
}

func (s *Server) bootstrap(ctx context.Context) error {
	s.mu.Lock()
	saved := s.saved
	s.mu.Unlock()
	if len(saved) > 0 {
		s.iterate(ctx, s.id, krpc.MethodFindNode, saved, nil)
		if n := s.NumNodes(); n > 0 {
			s.log.Info("dht: rejoined from saved nodes", "nodes", n)
			return nil
		}
	}
	boot := s.resolveBootstrap(ctx)
	if len(boot) == 0 && s.NumNodes() == 0 {
		s.log.Warn("dht: no bootstrap nodes")
		return ErrNoNodes
	}
	_, err := s.iterate(ctx, s.id, krpc.MethodFindNode, boot, nil)
	s.log.Info("dht: bootstrapped", "nodes", s.NumNodes(), "err", err)
	return err
}

// maintain runs one maintenance round.
func (s *Server) maintain(ctx context.Context) {
	now := s.now()
	s.mu.Lock()
	s.peers.expire(now)
	ping := s.table.Questionable(now, 2*K)
	targets := s.table.RefreshTargets(now, s.rng)
	empty := s.table.Len() == 0
	s.mu.Unlock()
	if empty {
		s.bootstrap(ctx)
		return
	}
	var wg sync.WaitGroup
	for _, n := range ping {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.query(ctx, n.Addr, krpc.MethodPing, &krpc.Args{})
		}()
	}
	wg.Wait()
	for i, t := range targets {
		if i == 4 || ctx.Err() != nil {
			break // the rest wait for the next round
		}
		s.iterate(ctx, t, krpc.MethodFindNode, nil, nil)
	}
	s.log.Debug("dht: maintenance", "nodes", s.NumNodes(), "pinged", len(ping), "refreshed", min(len(targets), 4))
}
