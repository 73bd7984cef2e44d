package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Client timing.
const (
	TorrentsPoll       = time.Second      // how often the torrent set is checked for changes
	reconnectMin       = time.Second      // first reconnect delay after a failure
	reconnectMax       = time.Minute      // reconnect delays double up to this
	recheckReachable   = 10 * time.Minute // a directly reachable peer asks again after this
	maxDataDialsAtOnce = 64
)

// ClientConfig configures the NATed side.
type ClientConfig struct {
	Relays     []string // HOST:PORT of relays' main ports; a control connection is kept to each
	PeerID     [20]byte // our BitTorrent peer id
	ListenPort uint16   // our own listen port, for the reachability probe (0 = no probe)
	// BehindNAT skips the probe: relays are used even if we seem reachable.
	BehindNAT bool
	// Torrents returns our current torrent set; it is polled every
	// TorrentsPoll and sent to the relays when it changed. Required.
	Torrents func() []Torrent
	// OnConn receives every spliced connection, in a goroutine of its own
	// that Run waits for; it owns and must close the conn. The conn reads as if accepted from the
	// outside peer, whose address RemoteAddr reports. Required.
	OnConn func(net.Conn)
	// GiveUpAfter, when positive, drops a relay that has not given a
	// working control connection (a WELCOME) for this long: its reconnects
	// stop and OnGiveUp is called with its address. For found relays,
	// which another can replace; 0 = keep trying for as long as Run runs.
	GiveUpAfter time.Duration
	OnGiveUp    func(relay string)
	Logger      *slog.Logger // nil = discard
}

// Client keeps control connections to relays and turns their CONNECT
// requests into connections handed to OnConn.
type Client struct {
	cfg  ClientConfig // static after construction
	log  *slog.Logger
	dial chan struct{} // semaphore for data-connection dials

	mu        sync.Mutex // guards the fields below
	public    map[string]netip.AddrPort
	reachable bool
}

// NewClient checks cfg; Run starts it.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Relays) == 0 {
		return nil, errors.New("relay: no relay addresses")
	}
	if cfg.Torrents == nil || cfg.OnConn == nil {
		return nil, errors.New("relay: Torrents and OnConn are required")
	}
	for _, r := range cfg.Relays {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return nil, fmt.Errorf("relay address %q: %w", r, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log, dial: make(chan struct{}, maxDataDialsAtOnce), public: map[string]netip.AddrPort{}}, nil
}

// Addrs returns the public addresses the relays currently give us.
func (c *Client) Addrs() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.AddrPort
	for _, ap := range c.public {
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

// Reachable reports whether a relay's probe found us reachable directly.
func (c *Client) Reachable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reachable
}

// Run keeps one control connection per relay, reconnecting with backoff,
// until ctx ends. It returns when every goroutine it started has ended.
func (c *Client) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range c.cfg.Relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keep(ctx, r, &wg)
		}()
	}
	wg.Wait()
}

// keep reconnects to one relay for as long as ctx lives, or until it has
// not worked for cfg.GiveUpAfter.
func (c *Client) keep(ctx context.Context, relay string, wg *sync.WaitGroup) {
	delay := reconnectMin
	lastUp := time.Now() // a relay is given to us working (or to be tried)
	for ctx.Err() == nil {
		start := time.Now()
		wait, up, err := c.session(ctx, relay, wg)
		c.mu.Lock()
		delete(c.public, relay)
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if up {
			lastUp = time.Now()
		} else if g := c.cfg.GiveUpAfter; g > 0 && time.Since(lastUp) >= g {
			c.log.Info("giving up on relay", "relay", relay, "err", err, "not working for", time.Since(lastUp).Round(time.Second))
			if c.cfg.OnGiveUp != nil {
				c.cfg.OnGiveUp(relay)
			}
			return
		}
		if time.Since(start) > 2*reconnectMax {
			delay = reconnectMin // it had been working: start over
		}
		if wait == 0 {
			wait = delay
			delay = min(delay*2, reconnectMax)
		}
		c.log.Info("relay connection ended", "relay", relay, "err", err, "retry in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// session runs one control connection. It returns how long to wait before
// the next one (0 = the backoff default), whether the relay welcomed us
// (it works, even if it found us reachable directly) and why it ended.
func (c *Client) session(ctx context.Context, relay string, wg *sync.WaitGroup) (time.Duration, bool, error) {
	d := net.Dialer{Timeout: HelloTimeout}
	nc, err := d.DialContext(ctx, "tcp", relay)
	if err != nil {
		return 0, false, fmt.Errorf("dial relay: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()

	hello := Message{Type: MsgHello, Port: c.cfg.ListenPort, PeerID: c.cfg.PeerID}
	if !c.cfg.BehindNAT && c.cfg.ListenPort != 0 {
		hello.Flags |= FlagProbe
	}
	frame, err := hello.Encode()
	if err != nil {
		return 0, false, err
	}
	nc.SetDeadline(time.Now().Add(HelloTimeout + ProbeTimeout))
	if _, err := nc.Write(append([]byte(Magic), frame...)); err != nil {
		return 0, false, fmt.Errorf("send hello: %w", err)
	}
	m, err := ReadMessage(nc)
	if err != nil {
		return 0, false, fmt.Errorf("read welcome: %w", err)
	}
	nc.SetDeadline(time.Time{})
	switch {
	case m.Type == MsgError:
		return 0, false, fmt.Errorf("relay refused: %s (code %d)", m.Text, m.Code)
	case m.Type != MsgWelcome:
		return 0, false, fmt.Errorf("relay sent %v, want WELCOME", m.Type)
	case m.Flags&FlagReachable != 0:
		c.mu.Lock()
		c.reachable = true
		c.mu.Unlock()
		c.log.Info("reachable directly: not using relay", "relay", relay, "seen as", m.Addr)
		return recheckReachable, true, errors.New("reachable directly")
	}
	c.mu.Lock()
	c.reachable = false
	c.public[relay] = m.Addr
	c.mu.Unlock()
	c.log.Info("reachable through relay", "relay", relay, "public", m.Addr)

	var wmu sync.Mutex
	send := func(m Message) error {
		wmu.Lock()
		defer wmu.Unlock()
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return WriteMessage(nc, m)
	}
	// the writer side: torrent set changes and pings
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		var last []Torrent
		first := true
		poll := time.NewTicker(TorrentsPoll)
		defer poll.Stop()
		ping := time.NewTicker(PingInterval)
		defer ping.Stop()
		for {
			if ts := c.cfg.Torrents(); first || !sameTorrents(ts, last) {
				if len(ts) > MaxTorrents {
					ts = ts[:MaxTorrents]
				}
				if err := send(Message{Type: MsgTorrents, Torrents: ts}); err != nil {
					c.log.Debug("send torrents", "relay", relay, "err", err)
					return
				}
				last, first = ts, false
			}
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
			case <-ping.C:
				if send(Message{Type: MsgPing}) != nil {
					return
				}
			}
		}
	}()
	for {
		nc.SetReadDeadline(time.Now().Add(ReadTimeout))
		m, err := ReadMessage(nc)
		if err != nil {
			return 0, true, err
		}
		switch m.Type {
		case MsgConnect:
			select {
			case c.dial <- struct{}{}:
			default:
				c.log.Debug("too many relay data dials; dropping CONNECT", "relay", relay)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if nc := c.openData(ctx, relay, m.Session, m.Addr); nc != nil {
					c.cfg.OnConn(nc)
				}
			}()
		case MsgPing:
			if err := send(Message{Type: MsgPong}); err != nil {
				return 0, true, err
			}
		case MsgPong:
		case MsgError:
			return 0, true, fmt.Errorf("relay error: %s (code %d)", m.Text, m.Code)
		default:
			return 0, true, fmt.Errorf("relay sent unexpected %v", m.Type)
		}
	}
}

// openData dials the relay for one CONNECT; it holds a slot of c.dial
// while dialing.
func (c *Client) openData(ctx context.Context, relay string, sid [SessionIDSize]byte, remote netip.AddrPort) net.Conn {
	defer func() { <-c.dial }()
	d := net.Dialer{Timeout: DataTimeout}
	nc, err := d.DialContext(ctx, "tcp", relay)
	if err != nil {
		c.log.Debug("relay data dial", "relay", relay, "err", err)
		return nil
	}
	frame, _ := Message{Type: MsgData, Session: sid}.Encode()
	nc.SetWriteDeadline(time.Now().Add(DataTimeout))
	if _, err := nc.Write(append([]byte(Magic), frame...)); err != nil {
		nc.Close()
		return nil
	}
	nc.SetWriteDeadline(time.Time{})
	return &relayedConn{Conn: nc, remote: net.TCPAddrFromAddrPort(remote)}
}

// relayedConn is a spliced connection that reports the outside peer as its
// remote address.
type relayedConn struct {
	net.Conn
	remote net.Addr
}

func (r *relayedConn) RemoteAddr() net.Addr { return r.remote }

// sameTorrents compares torrent sets. Only the kind of "left" counts
// (unknown, downloading, seeding): a download in progress does not resend
// the set every second.
func sameTorrents(a, b []Torrent) bool {
	return slices.EqualFunc(a, b, func(x, y Torrent) bool {
		return x.InfoHash == y.InfoHash && state(x.Left) == state(y.Left) && slices.Equal(x.Trackers, y.Trackers)
	})
}

func state(left int64) int {
	switch {
	case left < 0:
		return -1
	case left == 0:
		return 0
	}
	return 1
}
