package relay

import (
	"context"
	"crypto/sha1"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
)

// Announcing on a peer's behalf. Trackers commonly ignore a client-supplied
// ip= (opentracker does) and list the address the announce came from, so the
// relay announces itself: from its own address, with the peer's public port
// on the relay, left=0 when the peer seeds. The peer keeps announcing on its
// own too (for the peer list); the relay uses a peer id derived from the
// peer's (relayPeerID) so that trackers keying peers by id keep both entries.
const (
	announceMinWait   = 30 * time.Second
	announceMaxWait   = 30 * time.Minute
	announceRetry     = 15 * time.Second
	announceRetryMax  = 5 * time.Minute
	announceTimeout   = 20 * time.Second
	stoppedTimeout    = 3 * time.Second
	relayPeerIDPrefix = "-SHRL1-"
)

// announced is one torrent of a relayed peer, and its announcer.
type announced struct {
	left   chan int64 // latest "left" (cap 1; the newest value replaces an unread one)
	cancel context.CancelFunc
}

// relayPeerID derives the peer id the relay announces a peer under.
func relayPeerID(peerID [20]byte) [20]byte {
	sum := sha1.Sum(append([]byte("shoal relay "), peerID[:]...))
	var id [20]byte
	copy(id[:], relayPeerIDPrefix)
	copy(id[len(relayPeerIDPrefix):], sum[:])
	return id
}

// setTorrents replaces the peer's torrent set: announcers start for new
// torrents, stop (with a "stopped" announce) for removed ones, and hear of
// changed "left" values.
func (p *relayedPeer) setTorrents(ts []Torrent, wg *sync.WaitGroup) {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	keep := make(map[[20]byte]bool, len(ts))
	for _, t := range ts {
		keep[t.InfoHash] = true
		if a := p.torrents[t.InfoHash]; a != nil {
			select {
			case <-a.left:
			default:
			}
			a.left <- t.Left
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		a := &announced{left: make(chan int64, 1), cancel: cancel}
		p.torrents[t.InfoHash] = a
		if p.s.cfg.NoAnnounce {
			continue
		}
		if p.s.cfg.DHT != nil && !t.Private { // BEP 27: private torrents stay off the DHT
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.s.dhtAnnounceLoop(ctx, t.InfoHash, p.public.Port(), p.s.log.With("public", p.public))
			}()
		}
		if len(t.Trackers) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.announceLoop(ctx, t, a.left)
		}()
	}
	for ih, a := range p.torrents {
		if !keep[ih] {
			a.cancel()
			delete(p.torrents, ih)
		}
	}
}

// announceLoop announces one torrent of p to its trackers (the first that
// answers wins, in the order given) until ctx ends, then says "stopped".
func (p *relayedPeer) announceLoop(ctx context.Context, t Torrent, leftc <-chan int64) {
	s := p.s
	log := s.log.With("public", p.public, "torrent", t.InfoHash)
	req := tracker.AnnounceRequest{
		InfoHash: t.InfoHash, PeerID: relayPeerID(p.peerID), Port: p.public.Port(),
		Left: t.Left, Event: tracker.Started, NumWant: 0, IP: s.cfg.PublicIP,
	}
	key := req.PeerID[16:]
	req.Key = uint32(key[0])<<24 | uint32(key[1])<<16 | uint32(key[2])<<8 | uint32(key[3])
	announce := func(ctx context.Context, timeout time.Duration) (*tracker.AnnounceResponse, error) {
		var err error
		for _, u := range t.Trackers {
			if !tracker.Supported(u) {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, timeout)
			var resp *tracker.AnnounceResponse
			resp, err = s.cfg.Tracker.Announce(actx, u, req)
			cancel()
			if err == nil {
				return resp, nil
			}
			log.Debug("relay announce", "tracker", u, "err", err)
		}
		return nil, err
	}
	retry := announceRetry
	for {
		resp, err := announce(ctx, announceTimeout)
		wait := retry
		if err != nil || resp == nil {
			retry = min(retry*2, announceRetryMax)
		} else {
			log.Debug("relay announced", "left", req.Left, "event", req.Event)
			retry = announceRetry
			req.Event = tracker.None
			wait = min(max(resp.Interval, resp.MinInterval, announceMinWait), announceMaxWait)
		}
		timer := time.NewTimer(wait)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				timer.Stop()
				req.Event = tracker.Stopped
				sctx, cancel := context.WithTimeout(context.Background(), stoppedTimeout)
				announce(sctx, stoppedTimeout)
				cancel()
				return
			case left := <-leftc:
				if left != 0 || req.Left == 0 {
					req.Left = left // reported at the next regular announce
					continue
				}
				req.Left, req.Event = 0, tracker.Completed // tell trackers now that we seed
				waiting = false
			case <-timer.C:
				waiting = false
			}
		}
		timer.Stop()
	}
}
