package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
)

// # The relay directory
//
// Peers behind NATs find relays without being told their addresses: relays
// list themselves in a "relay directory", which is an ordinary swarm on
// trackers and in the DHT under one well-known info-hash, DirectoryHash.
//
//	relay R (shoal relay --directory-tracker URL --dht)
//	  tracker: announce DirectoryHash, port = R's main (control) port, left=0
//	           (a seed), event=started, then every interval, event=stopped on exit
//	  DHT:     announce_peer DirectoryHash, port = R's main port (not implied_port),
//	           every DirectoryDHTInterval
//	NATed peer P (shoal get/seed/daemon --find-relays)
//	  tracker: for each tracker of P's public torrents: announce DirectoryHash as a
//	           leecher (left=LookupLeft, so that the tracker hands out seeds, i.e.
//	           relays), event=started, numwant=LookupNumWant, then at once
//	           event=stopped so that P is not listed for long
//	  DHT:     get_peers DirectoryHash
//	  then:    at most MaxFoundPerResponse addresses from any one answer; each is
//	           probed (Probe: Magic + PING, a relay answers ERROR "expected HELLO
//	           or DATA"), and up to the wanted number of relays that answer are used.
//
// A relay's entry carries the address trackers and DHT nodes saw its announce
// come from, so it is only useful when the relay announces from the address
// peers reach it at (--public-ip is sent to trackers as ip=, which many
// ignore). Entries are not trusted: a stale entry, a looking peer's entry or
// a hostile one fails the probe, and the relay protocol gives a relay nothing
// beyond what any BitTorrent peer learns (it sees the torrents it relays).

// DirectorySeed is the text whose SHA-1 is DirectoryHash.
const DirectorySeed = "shoal relay directory v1"

// DirectoryHash is the info-hash relays announce themselves under:
// sha1("shoal relay directory v1") (the 24 ASCII bytes, no terminator) =
// a508504eac990162d675744e865c6adb6b7a6ed8.
var DirectoryHash = [20]byte(sha1.Sum([]byte(DirectorySeed)))

// Relay directory limits and timings.
const (
	// DefaultMaxRelays is how many found relays a peer uses at most.
	DefaultMaxRelays = 3
	// MaxFoundPerResponse caps the addresses taken from one tracker answer
	// or one DHT lookup; the rest are ignored.
	MaxFoundPerResponse = 16
	// MaxLookupTrackers caps the trackers asked in one lookup.
	MaxLookupTrackers = 8
	// LookupTimeout bounds one lookup (trackers and DHT in parallel, probes).
	LookupTimeout = 30 * time.Second
	// LookupTrackerTimeout bounds one tracker announce of a lookup.
	LookupTrackerTimeout = 15 * time.Second
	// FirstRelookup is the wait before the second lookup (a peer's DHT
	// node may not have joined at the first); the wait doubles after each
	// lookup up to RelookupInterval.
	FirstRelookup = 15 * time.Second
	// RelookupInterval is how long a peer waits at most before looking
	// again while it has fewer relays than it wants.
	RelookupInterval = 5 * time.Minute
	// FoundRelayGiveUp is how long a found relay may fail to give us a
	// working control connection before it is dropped and another is
	// looked for. Relays given by hand are never dropped.
	FoundRelayGiveUp = 2 * time.Minute
	// LookupNumWant is the numwant of a lookup announce.
	LookupNumWant = 50
	// LookupLeft is the "left" of a lookup announce: non-zero, so that the
	// tracker treats the looking peer as a leecher and lists seeds (relays).
	LookupLeft = 1
	// DirectoryDHTInterval is how often a relay re-announces itself (and its
	// relayed peers' torrents) in the DHT; nodes drop announces after ~30 min.
	DirectoryDHTInterval = 15 * time.Minute
	// maxProbesAtOnce bounds concurrent probes of one lookup.
	maxProbesAtOnce = 8
	// directoryPeerIDPrefix marks the peer id a relay announces itself under.
	directoryPeerIDPrefix = "-SHRD1-"
	// lookupPeerIDPrefix marks the peer id of a lookup announce.
	lookupPeerIDPrefix = "-SHRF1-"
)

// DHT is what the relay needs of a DHT node (*dht.Server has it): announce
// a port under an info-hash, and look one up.
type DHT interface {
	Announce(ctx context.Context, infoHash [20]byte, port int, impliedPort bool) ([]netip.AddrPort, error)
	GetPeers(ctx context.Context, infoHash [20]byte) ([]netip.AddrPort, error)
}

// Probe reports whether a relay answers at addr: it sends Magic and a PING
// as the first frame, to which a relay replies ERROR (protocol) before it
// closes. Nothing is registered at the relay. It is bounded by ctx and
// ProbeTimeout.
func Probe(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return fmt.Errorf("relay probe %s: %w", addr, err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	frame, _ := Message{Type: MsgPing}.Encode()
	if _, err := nc.Write(append([]byte(Magic), frame...)); err != nil {
		return fmt.Errorf("relay probe %s: %w", addr, err)
	}
	m, err := ReadMessage(nc)
	if err != nil {
		return fmt.Errorf("relay probe %s: not a relay: %w", addr, err)
	}
	if m.Type != MsgError || m.Code != ErrCodeProtocol {
		return fmt.Errorf("relay probe %s: unexpected answer %v", addr, m.Type)
	}
	return nil
}

// randomPeerID returns prefix followed by random bytes.
func randomPeerID(prefix string) [20]byte {
	var id [20]byte
	copy(id[:], prefix)
	rand.Read(id[len(prefix):])
	return id
}

// announceDirectory lists the relay in the directory until ctx ends: on
// each of cfg.DirectoryTrackers, and in cfg.DHT when set. It returns when
// every announcer it started has ended.
func (s *Server) announceDirectory(ctx context.Context) {
	port := s.ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	id := randomPeerID(directoryPeerIDPrefix)
	for _, u := range s.cfg.DirectoryTrackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.directoryTrackerLoop(ctx, u, id, uint16(port))
		}()
	}
	if s.cfg.DHT != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.dhtAnnounceLoop(ctx, DirectoryHash, uint16(port), s.log.With("directory", "dht"))
		}()
	}
	wg.Wait()
}

// directoryTrackerLoop announces the relay's main port under DirectoryHash
// to one tracker, as a seed, until ctx ends; then it says "stopped".
func (s *Server) directoryTrackerLoop(ctx context.Context, u string, id [20]byte, port uint16) {
	log := s.log.With("directory", u)
	req := tracker.AnnounceRequest{
		InfoHash: DirectoryHash, PeerID: id, Port: port, Left: 0,
		Event: tracker.Started, NumWant: 0, IP: s.cfg.PublicIP,
		Key: binary.BigEndian.Uint32(id[16:]),
	}
	retry := announceRetry
	for {
		actx, cancel := context.WithTimeout(ctx, announceTimeout)
		resp, err := s.cfg.Tracker.Announce(actx, u, req)
		cancel()
		if ctx.Err() != nil {
			break
		}
		wait := retry
		if err != nil {
			log.Warn("relay: directory announce failed", "err", err, "retry in", retry)
			retry = min(retry*2, announceRetryMax)
		} else {
			if req.Event == tracker.Started {
				log.Info("relay: listed in the relay directory", "port", port)
			}
			retry = announceRetry
			req.Event = tracker.None
			wait = min(max(resp.Interval, resp.MinInterval, announceMinWait), announceMaxWait)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	if req.Event == tracker.Started {
		return // never listed: nothing to withdraw
	}
	req.Event = tracker.Stopped
	sctx, cancel := context.WithTimeout(context.Background(), stoppedTimeout)
	defer cancel()
	if _, err := s.cfg.Tracker.Announce(sctx, u, req); err != nil {
		log.Debug("relay: directory stopped announce", "err", err)
	}
}

// errNoSources is returned by a lookup that has nowhere to look.
var errNoSources = errors.New("relay lookup: no trackers of public torrents and no DHT to look in")
