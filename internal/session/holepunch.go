package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// Upgrading a relayed connection to a direct one (hole punching).
//
// Protocol flow, between two shoal peers that both set Config.Rendezvous:
//
//	both  ext handshake  m["shoal_punch"] = 4      (support)
//	A     knows the connection came through its relay (UseRelays' OnConn)
//	A → B extended shoal_punch  d1:r<len>:HOST:PORTe  (the rendezvous A registered at)
//	A, B  nat.Upgrade(rendezvous, Self, Peer, Initiator = our id < their id)
//	      on success each side first drops the relayed connection, then the
//	      initiator sends the BitTorrent handshake on the direct connection and
//	      the other side accepts it like any incoming one; the engine then has
//	      one (direct) connection to the peer.
//	      on failure both sides keep the relayed connection (a fallback).
//
// Message payload (BEP 10 extended message, our id extPunchID):
//
//	bencoded dict {"r": rendezvous HOST:PORT, at most maxRendezvousLen bytes}
const (
	// PunchExtName is the BEP 10 extension name shoal peers announce when
	// they can upgrade a relayed connection by hole punching.
	PunchExtName = "shoal_punch"

	extPunchID       = 4
	maxRendezvousLen = 255
	maxPunchMsgLen   = 300
	punchCooldown    = 2 * time.Minute // between upgrade attempts to one peer
	maxUpgrades      = 8               // upgrades in progress at once, per Client
	maxRelayedAddrs  = 4096            // bound on the relayed-address set
)

// errReplacedByDirect is why a relayed connection is dropped after a punch.
var errReplacedByDirect = errors.New("replaced by a direct (hole-punched) connection")

// PunchStats counts hole-punching upgrades of relayed connections.
type PunchStats struct {
	Attempts  int64 // punch rounds started
	Successes int64 // rounds that produced a direct connection
	Fallbacks int64 // upgrades given up: the relayed connection stays
	Direct    int64 // direct connections handed to a torrent

	// BEP 55 ut_holepunch (bep55.go)
	HolepunchRequests  int64 // rendezvous we asked a peer for
	HolepunchRelayed   int64 // pairs of peers we introduced to each other
	HolepunchAttempts  int64 // connects we acted on
	HolepunchSuccesses int64 // of those, connections made
	HolepunchFallbacks int64 // connects that failed, and rendezvous refused
}

// hpCounters count BEP 55 outcomes; safe for concurrent use.
type hpCounters struct {
	Requests, Relayed, Attempts, Successes, Fallbacks atomic.Int64
}

// puncher is a Client's hole-punching state. It locks itself.
type puncher struct {
	counters nat.Counters // atomic
	hp       hpCounters   // atomic
	hpBusy   atomic.Int32 // ut_holepunch connects in flight

	mu      sync.Mutex              // guards the fields below
	relayed map[netip.AddrPort]bool // remote addresses of connections spliced by a relay
	last    map[[20]byte]time.Time  // when we last started an upgrade to a peer
	busy    map[[20]byte]bool       // upgrades in progress
	direct  int64                   // direct connections handed over
}

func newPuncher() *puncher {
	return &puncher{relayed: map[netip.AddrPort]bool{}, last: map[[20]byte]time.Time{}, busy: map[[20]byte]bool{}}
}

func (c *Client) puncher() *puncher { return c.punch }

// PunchStats reports the hole-punching counters.
func (c *Client) PunchStats() PunchStats {
	p := c.puncher()
	p.mu.Lock()
	direct := p.direct
	p.mu.Unlock()
	return PunchStats{
		Attempts: p.counters.Attempts.Load(), Successes: p.counters.Successes.Load(),
		Fallbacks: p.counters.Fallbacks.Load(), Direct: direct,
		HolepunchRequests: p.hp.Requests.Load(), HolepunchRelayed: p.hp.Relayed.Load(),
		HolepunchAttempts: p.hp.Attempts.Load(), HolepunchSuccesses: p.hp.Successes.Load(),
		HolepunchFallbacks: p.hp.Fallbacks.Load(),
	}
}

// beginAddr reserves one of maxUpgrades ut_holepunch connects in flight.
func (p *puncher) beginAddr() bool {
	if p.hpBusy.Add(1) > maxUpgrades {
		p.hpBusy.Add(-1)
		return false
	}
	return true
}

func (p *puncher) endAddr() { p.hpBusy.Add(-1) }

func (c *Client) punchEnabled() bool { return c.cfg.Rendezvous != "" }

// markRelayed remembers that a connection from remote came through a relay.
func (p *puncher) markRelayed(remote net.Addr) {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.relayed) >= maxRelayedAddrs {
		clear(p.relayed) // only costs a missed upgrade
	}
	p.relayed[ap] = true
}

func (p *puncher) isRelayed(ap netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed[ap]
}

func (p *puncher) forget(ap netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.relayed, ap)
}

// begin reserves an upgrade to id: at most one at a time per peer, one per
// punchCooldown per peer (a peer cannot make us dial rendezvous addresses in
// a loop) and maxUpgrades in all.
func (p *puncher) begin(id [20]byte, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[id] || len(p.busy) >= maxUpgrades {
		return false
	}
	if last, ok := p.last[id]; ok && now.Sub(last) < punchCooldown {
		return false
	}
	if len(p.last) >= maxRelayedAddrs {
		clear(p.last)
	}
	p.busy[id] = true
	p.last[id] = now
	return true
}

func (p *puncher) end(id [20]byte, direct bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, id)
	if direct {
		p.direct++
	}
}

// punchMsg is the shoal_punch message payload.
type punchMsg struct {
	Rendezvous string `bencode:"r"`
}

// parsePunchMsg decodes and checks a shoal_punch payload.
func parsePunchMsg(b []byte) (punchMsg, error) {
	var m punchMsg
	if len(b) > maxPunchMsgLen {
		return m, fmt.Errorf("shoal_punch message of %d bytes", len(b))
	}
	if err := bencode.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("shoal_punch: %w", err)
	}
	if len(m.Rendezvous) == 0 || len(m.Rendezvous) > maxRendezvousLen {
		return m, errors.New("shoal_punch: bad rendezvous address length")
	}
	if _, _, err := net.SplitHostPort(m.Rendezvous); err != nil {
		return m, fmt.Errorf("shoal_punch: rendezvous: %w", err)
	}
	return m, nil
}

// onPunchHandshake runs on the owner loop after a peer's extension
// handshake: when the connection came through our relay and the peer can
// punch too, propose an upgrade and start ours.
func (t *Torrent) onPunchHandshake(ps *peerState) {
	c := t.c
	if !c.punchEnabled() || ps.ext[PunchExtName] <= 0 || ps.ext[PunchExtName] > 255 {
		return
	}
	p := c.puncher()
	if !p.isRelayed(ps.conn.Addr) {
		return
	}
	id := ps.conn.Remote.PeerID
	if id == c.peerID || !p.begin(id, time.Now()) {
		return
	}
	payload, err := bencode.Marshal(punchMsg{Rendezvous: c.cfg.Rendezvous})
	if err != nil {
		p.end(id, false)
		return
	}
	ps.conn.Send(wire.Message{ID: wire.Extended, ExtID: uint8(ps.ext[PunchExtName]), Payload: payload})
	t.log.Info("proposing a hole punch", "peer", ps.conn.Addr, "rendezvous", c.cfg.Rendezvous)
	go t.upgrade(id, c.cfg.Rendezvous)
}

// onPunchMsg runs on the owner loop when a peer proposes an upgrade.
func (t *Torrent) onPunchMsg(ps *peerState, payload []byte) {
	c := t.c
	if !c.punchEnabled() {
		return // we never announced the extension
	}
	if id := ps.ext[PunchExtName]; id <= 0 || id > 255 {
		return // it did not announce support: ignore
	}
	m, err := parsePunchMsg(payload)
	if err != nil {
		t.drop(ps, "%v", err)
		return
	}
	id := ps.conn.Remote.PeerID
	if id == c.peerID || !c.puncher().begin(id, time.Now()) {
		return
	}
	t.log.Info("peer proposes a hole punch", "peer", ps.conn.Addr, "rendezvous", m.Rendezvous)
	go t.upgrade(id, m.Rendezvous)
}

// upgrade tries to punch a direct connection to the peer id; on success it
// replaces the relayed connection with the direct one. It runs in its own
// goroutine, which ends with the upgrade; the direct connection's peer
// goroutines live until the torrent stops (or the connection ends).
func (t *Torrent) upgrade(id [20]byte, rendezvous string) {
	c := t.c
	p := c.puncher()
	// ctx ends with the torrent (not with this function): the adopted
	// connection runs under it
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-t.stopped
		cancel()
	}()
	initiator := bytes.Compare(c.peerID[:], id[:]) < 0
	log := t.log.With("room", "punch", "peer", fmt.Sprintf("%x", id[:8]))
	nc, err := nat.Upgrade(ctx, nat.UpgradeConfig{
		Rendezvous: rendezvous, Self: c.peerID, Peer: id, Initiator: initiator,
		Counters: &p.counters, Logger: log,
	})
	if err != nil {
		log.Info("hole punch failed; staying on the relay", "err", err)
		p.end(id, false)
		return
	}
	err = t.adoptDirect(ctx, nc, id, initiator)
	p.end(id, err == nil)
	if err != nil {
		nc.Close()
		log.Info("direct connection not adopted; staying on the relay", "err", err)
	}
}

// adoptDirect handshakes the punched connection nc as a BitTorrent
// connection for this torrent (the initiator sends first), then, in one step
// on the owner loop, drops the connection to id we had (the relayed one) and
// adds nc in its place, so the engine's one-connection-per-peer-id rule
// keeps the direct one.
func (t *Torrent) adoptDirect(ctx context.Context, nc net.Conn, id [20]byte, initiator bool) error {
	var hs wire.Handshake
	var err error
	if initiator {
		hs, err = peer.Initiate(nc, t.handshake())
		if err == nil && hs.InfoHash != t.infoHash {
			err = errors.New("peer answered for another torrent")
		}
	} else {
		var reserved [8]byte
		var ih [20]byte
		reserved, ih, err = peer.AcceptHead(nc)
		if err == nil && ih != t.infoHash {
			err = errors.New("peer asked for another torrent")
		}
		if err == nil {
			hs, err = peer.AcceptFinish(nc, reserved, t.handshake())
		}
	}
	if err != nil {
		return fmt.Errorf("handshake on the direct connection: %w", err)
	}
	if hs.PeerID != id {
		return errors.New("direct connection: unexpected peer id")
	}
	adopted := false
	ok := t.do(func() {
		if ps := t.byID[id]; ps != nil {
			t.log.Info("dropping relayed connection", "peer", ps.conn.Addr, "reason", errReplacedByDirect)
			t.removePeer(ps, errReplacedByDirect)
		}
		t.addConn(ctx, newConn{nc: nc, hs: hs, outbound: initiator})
		adopted = t.byID[id] != nil
	})
	if !ok {
		return errors.New("torrent stopped")
	}
	if !adopted {
		return errors.New("refused by the engine's connection limits")
	}
	return nil
}
