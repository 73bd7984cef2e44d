package tracker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// maxConnIDs caps the UDP connection-id cache.
const maxConnIDs = 1024

// udpTarget is a dialled UDP tracker: one socket per Announce/Scrape call.
type udpTarget struct {
	conn   net.Conn
	remote netip.AddrPort
	v6     bool // tracker reached over IPv6: 18-byte peers
}

func dialUDP(ctx context.Context, u *url.URL) (*udpTarget, error) {
	if u.Port() == "" {
		return nil, errors.New("udp tracker URL has no port")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ua, ok := conn.RemoteAddr().(*net.UDPAddr)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("dial: unexpected remote address %v", conn.RemoteAddr())
	}
	remote := ua.AddrPort()
	a := remote.Addr()
	return &udpTarget{conn: conn, remote: remote, v6: a.Is6() && !a.Is4In6()}, nil
}

// udpURLData is the BEP 41 URL data to send: the path and query, unless they
// carry nothing ("" , "/" or "/announce").
func udpURLData(u *url.URL) (string, error) {
	s := u.EscapedPath()
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	switch s {
	case "", "/", "/announce":
		return "", nil
	}
	if len(s) > udpMaxURLData {
		return "", fmt.Errorf("udp tracker URL path and query longer than %d bytes", udpMaxURLData)
	}
	return s, nil
}

// udpDeadline bounds a whole UDP call: every try may need a connect and a
// request round trip.
const udpDeadline = UDPTries * 2 * UDPTryTimeout

func (c *Client) udpAnnounce(ctx context.Context, u *url.URL, req *AnnounceRequest) (*AnnounceResponse, error) {
	urlData, err := udpURLData(u)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, udpDeadline)
	defer cancel()
	t, err := dialUDP(ctx, u)
	if err != nil {
		return nil, err
	}
	defer t.conn.Close()
	p, err := c.udpExchange(ctx, t, udpActionAnnounce, func(connID uint64, txid uint32) []byte {
		return udpAnnounceRequest(connID, txid, req, urlData)
	})
	if err != nil {
		return nil, err
	}
	return parseUDPAnnounce(p, t.v6)
}

func (c *Client) udpScrape(ctx context.Context, u *url.URL, hashes [][20]byte) (map[[20]byte]ScrapeResult, error) {
	ctx, cancel := withTimeout(ctx, udpDeadline)
	defer cancel()
	t, err := dialUDP(ctx, u)
	if err != nil {
		return nil, err
	}
	defer t.conn.Close()
	out := make(map[[20]byte]ScrapeResult, len(hashes))
	for len(hashes) > 0 {
		batch := hashes[:min(len(hashes), udpMaxScrape)]
		hashes = hashes[len(batch):]
		p, err := c.udpExchange(ctx, t, udpActionScrape, func(connID uint64, txid uint32) []byte {
			return udpScrapeRequest(connID, txid, batch)
		})
		if err != nil {
			return nil, err
		}
		if err := parseUDPScrape(p, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// udpExchange sends one request (connecting first unless a fresh connection
// id is cached) and returns the reply payload. Up to UDPTries tries; a try
// that times out or is refused while using a cached id forgets that id, so
// the next try reconnects (the tracker may have restarted).
func (c *Client) udpExchange(ctx context.Context, t *udpTarget, action uint32, build func(connID uint64, txid uint32) []byte) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { t.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, udpMaxPacket)
	wait := UDPTryTimeout
	if c.tryTimeout > 0 {
		wait = c.tryTimeout
	}
	var lastErr error
	for try := 0; try < UDPTries; try++ {
		connID, cached := c.cachedConnID(t.remote)
		if !cached {
			txid := rand.Uint32()
			p, err := t.roundTrip(ctx, wait, buf, udpConnectRequest(txid), txid, udpActionConnect)
			if err != nil {
				if isTimeout(err) && ctx.Err() == nil {
					lastErr = err
					continue
				}
				return nil, err
			}
			if connID, err = parseUDPConnect(p); err != nil {
				return nil, err
			}
			c.storeConnID(t.remote, connID)
		}
		txid := rand.Uint32()
		p, err := t.roundTrip(ctx, wait, buf, build(connID, txid), txid, action)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		var fe *FailureError
		switch {
		case isTimeout(err):
			c.forgetConnID(t.remote)
		case errors.As(err, &fe) && cached:
			c.forgetConnID(t.remote) // maybe "connection id expired": reconnect once
		default:
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// roundTrip sends pkt and waits up to UDPTryTimeout for the reply with
// txid, ignoring short packets and replies for other transactions.
func (t *udpTarget) roundTrip(ctx context.Context, wait time.Duration, buf, pkt []byte, txid, action uint32) ([]byte, error) {
	if _, err := t.conn.Write(pkt); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := t.conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	if ctx.Err() != nil { // AfterFunc may have fired before we set the deadline
		return nil, ctx.Err()
	}
	for {
		n, err := t.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if isTimeout(err) {
				return nil, fmt.Errorf("no reply within %v: %w", wait, os.ErrDeadlineExceeded)
			}
			return nil, fmt.Errorf("receive: %w", err)
		}
		p, err := parseUDPResponse(buf[:n], txid, action)
		if errors.Is(err, errUDPShort) || errors.Is(err, errUDPTxMismatch) {
			continue // not ours (a late reply to an earlier try, or noise)
		}
		return p, err
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (c *Client) cachedConnID(addr netip.AddrPort) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.connIDs[addr]
	if !ok || !c.clock().Before(e.expires) {
		return 0, false
	}
	return e.id, true
}

func (c *Client) storeConnID(addr netip.AddrPort, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if c.connIDs == nil {
		c.connIDs = make(map[netip.AddrPort]connIDEntry)
	}
	if len(c.connIDs) >= maxConnIDs {
		for k, e := range c.connIDs {
			if !now.Before(e.expires) {
				delete(c.connIDs, k)
			}
		}
		for k := range c.connIDs {
			if len(c.connIDs) < maxConnIDs {
				break
			}
			delete(c.connIDs, k)
		}
	}
	c.connIDs[addr] = connIDEntry{id: id, expires: now.Add(UDPConnIDTTL)}
}

func (c *Client) forgetConnID(addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.connIDs, addr)
}
