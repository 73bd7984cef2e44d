// Package session is shoal's engine: the only room that knows all the others.
// A Client owns the listening socket and routes incoming connections to
// torrents by info-hash; each Torrent has one goroutine that owns its state
// (picker, choker, peers) and receives events from peer connections, hashing
// workers and the tracker announcer.
package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/tracker"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// Version is reported to peers in the extension handshake ("v").
var Version = "shoal/0.1"

// Config holds settings shared by every torrent of a Client.
type Config struct {
	Listen       string          // TCP listen address, e.g. ":6881" or "127.0.0.1:0"; "" = ":6881", falling back to a random port
	Logger       *slog.Logger    // nil = discard
	Tracker      *tracker.Client // nil = a default client
	MaxPeers     int             // connections per torrent (default 60)
	MaxHalfOpen  int             // outgoing connection attempts at once, per torrent (default 16)
	UploadSlots  int             // regular tit-for-tat unchoke slots (default 4)
	SeedSlots    int             // regular unchoke slots while seeding, the least complete peers first, every 3 s (default 8)
	AnnounceIP   netip.Addr      // optional ip= for trackers
	DHT          DHT             // nil = no DHT
	MaxConns     int             // connections over all torrents (default 500)
	MaxPerIP     int             // connections from one non-loopback IP address, per torrent (default 4)
	UploadRate   int64           // bytes/s for all torrents together; 0 = unlimited
	DownloadRate int64           // bytes/s for all torrents together; 0 = unlimited
	Flood        FloodOptions    // flood search (shoal_search extension) privacy settings
	PortForward  bool            // map the listen port on the LAN's router (NAT-PMP, then UPnP-IGD); off unless the user asks
	Rendezvous   string          // HOST:PORT of a hole-punching rendezvous (nat.RendezvousServer); "" = never upgrade relayed connections
	// PunchPeers: when a peer introduces us to another (BEP 55
	// ut_holepunch), dial it from our listen port, so that two peers behind
	// port-preserving NATs meet by TCP simultaneous open. The listener then
	// shares its port (SO_REUSEPORT). For peers behind a NAT.
	PunchPeers bool
	// RelayGiveUp: a relay found in the relay directory that has not
	// worked for this long is dropped and another is looked for
	// (0 = relay.FoundRelayGiveUp). Relays given by hand are kept.
	RelayGiveUp time.Duration
}

// Client is one BitTorrent session: a listener and the torrents it serves.
type Client struct {
	// static after construction
	cfg    Config
	log    *slog.Logger
	peerID [20]byte
	ln     net.Listener
	port   uint16

	nextConnID atomic.Uint64
	conns      atomic.Int64  // established connections over all torrents
	flood      *floodNode    // static after construction; locks itself
	punch      *puncher      // static after construction; locks itself (holepunch.go)
	up, down   *rate.Limiter // shared by every connection; nil = unlimited

	mu       sync.Mutex // guards torrents
	torrents map[[20]byte]*Torrent
}

// NewPeerID returns an Azureus-style peer id: "-SH0001-" and 12 random bytes.
func NewPeerID() [20]byte {
	var id [20]byte
	copy(id[:], "-SH0001-")
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var r [12]byte
	rand.Read(r[:])
	for i, b := range r {
		id[8+i] = alphabet[int(b)%len(alphabet)]
	}
	return id
}

// NewClient opens the listening socket.
func NewClient(cfg Config) (*Client, error) {
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = 60
	}
	if cfg.MaxHalfOpen == 0 {
		cfg.MaxHalfOpen = 16
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 500
	}
	if cfg.MaxPerIP == 0 {
		cfg.MaxPerIP = 4
	}
	if cfg.SeedSlots == 0 {
		cfg.SeedSlots = 8
	}
	if cfg.UploadSlots == 0 {
		cfg.UploadSlots = 4
	}
	if cfg.Tracker == nil {
		cfg.Tracker = &tracker.Client{UserAgent: Version}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := cfg.Listen
	fallback := false
	if addr == "" {
		addr, fallback = ":6881", true
	}
	listen := net.Listen
	if cfg.PunchPeers {
		listen = nat.ListenShared
	}
	ln, err := listen("tcp", addr)
	if err != nil && fallback {
		ln, err = listen("tcp", ":0")
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ap, _ := netip.ParseAddrPort(ln.Addr().String())
	c := &Client{
		cfg: cfg, log: log, peerID: NewPeerID(), ln: ln, port: ap.Port(),
		torrents: map[[20]byte]*Torrent{},
		up:       newLimiter(cfg.UploadRate), down: newLimiter(cfg.DownloadRate),
	}
	c.punch = newPuncher()
	c.flood = newFloodNode(cfg.Flood, c.localEntries, log.With("room", "flood"))
	return c, nil
}

// Port is the TCP port peers can connect to.
func (c *Client) Port() uint16 { return c.port }

// Addr is the listening address.
func (c *Client) Addr() net.Addr { return c.ln.Addr() }

// PeerID is our peer id.
func (c *Client) PeerID() [20]byte { return c.peerID }

// Run accepts incoming connections until ctx is done, then closes the listener.
func (c *Client) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		c.ln.Close()
	}()
	if c.cfg.PortForward {
		go c.forwardPort(ctx)
	}
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go c.handleIncoming(ctx, nc)
	}
}

func (c *Client) handleIncoming(ctx context.Context, nc net.Conn) {
	reserved, ih, err := peer.AcceptHead(nc)
	if err != nil {
		c.log.Debug("incoming handshake", "peer", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	c.mu.Lock()
	t := c.torrents[ih]
	c.mu.Unlock()
	if t == nil {
		c.log.Debug("incoming for unknown torrent", "peer", nc.RemoteAddr())
		nc.Close()
		return
	}
	theirs, err := peer.AcceptFinish(nc, reserved, t.handshake())
	if err != nil {
		c.log.Debug("incoming handshake", "peer", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	t.offerConn(ctx, nc, theirs, false)
}

func (c *Client) register(t *Torrent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.torrents[t.infoHash]; ok {
		return fmt.Errorf("torrent %x already added", t.infoHash)
	}
	c.torrents[t.infoHash] = t
	return nil
}

func (c *Client) unregister(t *Torrent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.torrents[t.infoHash] == t {
		delete(c.torrents, t.infoHash)
	}
}

func (c *Client) ourHandshake(ih [20]byte) wire.Handshake {
	h := wire.Handshake{InfoHash: ih, PeerID: c.peerID}
	h.SetExtended()
	h.SetFast()
	if c.cfg.DHT != nil {
		h.SetDHT()
	}
	return h
}

// SetDHT attaches a DHT node; call it before adding torrents.
func (c *Client) SetDHT(d DHT) { c.cfg.DHT = d }

// localEntries lists our torrents for answering flood searches.
func (c *Client) localEntries() []catalog.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	es := make([]catalog.Entry, 0, len(c.torrents))
	for _, t := range c.torrents {
		es = append(es, catalog.FromInfo(t.info, time.Time{}))
	}
	return es
}

// FloodSearch sends a Gnutella-style query to the connected shoal peers
// (TTL hops, each peer forwards it once) and collects the answers that come
// back within wait.
func (c *Client) FloodSearch(ctx context.Context, q string, ttl int, wait time.Duration) ([]catalog.Result, FloodStats, error) {
	return c.flood.search(ctx, q, ttl, wait)
}

// forwardPort asks the router to forward our listen port and keeps the
// mapping alive until ctx ends, when it is removed.
func (c *Client) forwardPort(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	f, err := nat.Forward(fctx, nat.ForwardConfig{Protocol: "tcp", Port: c.port, Description: Version, Logger: c.log})
	cancel()
	if err != nil {
		c.log.Warn("port forwarding failed; peers behind NATs may not reach us", "err", err)
		return
	}
	c.log.Info("port forwarded", "mapping", f.Mapping())
	f.Run(ctx)
}
