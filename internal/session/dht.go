package session

import (
	"context"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// DHT is what the engine needs of a distributed hash table node (the
// consumer defines the interface; cmd wires in *dht.Server).
type DHT interface {
	Announce(ctx context.Context, infoHash [20]byte, port int, impliedPort bool) ([]netip.AddrPort, error)
	GetPeers(ctx context.Context, infoHash [20]byte) ([]netip.AddrPort, error)
	AddNode(addr netip.AddrPort)
	Addr() netip.AddrPort
}

const (
	dhtFirstRetry  = 15 * time.Second // while we have few peers
	dhtLeechPeriod = 5 * time.Minute
	dhtSeedPeriod  = 15 * time.Minute
	dhtLookup      = 60 * time.Second
	dhtFailRetry   = 3 * time.Second
)

// dhtLoop announces the torrent into the DHT and feeds the peers found to the
// owner loop: soon and often while we have few peers, rarely once seeding.
func (t *Torrent) dhtLoop(ctx context.Context) {
	d := t.c.cfg.DHT
	failures := 0
	for {
		lctx, cancel := context.WithTimeout(ctx, dhtLookup)
		peers, err := d.Announce(lctx, t.infoHash, int(t.c.port), false)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			t.log.Debug("dht announce", "err", err, "peers", len(peers))
		} else {
			failures = 0
		}
		if len(peers) > 0 {
			select {
			case t.addrs <- peers:
			case <-ctx.Done():
				return
			}
		}
		st := t.Stats()
		wait := dhtLeechPeriod
		switch {
		case st.Complete:
			wait = dhtSeedPeriod
		case st.Peers < 5:
			wait = dhtFirstRetry
		}
		if failures > 0 && failures <= 10 {
			wait = dhtFailRetry // the node may still be joining the network
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// sendPort tells a DHT-capable peer where our DHT node listens (BEP 5).
func (t *Torrent) sendPort(ps *peerState) {
	if d := t.c.cfg.DHT; d != nil && ps.conn.Remote.DHT() {
		ps.conn.Send(wire.Message{ID: wire.Port, Port: d.Addr().Port()})
	}
}

// onPort adds the peer's DHT node to our routing table.
func (t *Torrent) onPort(ps *peerState, port uint16) {
	if d := t.c.cfg.DHT; d != nil && port != 0 && !t.info.Private {
		d.AddNode(netip.AddrPortFrom(ps.conn.Addr.Addr(), port))
	}
}
