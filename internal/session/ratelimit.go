package session

import (
	"context"
	"net"

	"golang.org/x/time/rate"
)

// limitBurst is the smallest token bucket depth: one 16 KiB block plus its
// header, so a limit is smooth at block granularity.
const limitBurst = 64 << 10

// newLimiter returns a byte-rate limiter; bytesPerSec <= 0 means unlimited.
// Limiters always exist so limits can be changed while connections run.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	l := rate.NewLimiter(rate.Inf, limitBurst)
	setLimit(l, bytesPerSec)
	return l
}

func setLimit(l *rate.Limiter, bytesPerSec int64) {
	if bytesPerSec <= 0 {
		l.SetLimit(rate.Inf)
		return
	}
	l.SetBurst(max(limitBurst, int(bytesPerSec/10)))
	l.SetLimit(rate.Limit(bytesPerSec))
}

// limitedConn applies upload (Write) and download (Read) limits to a
// connection: the session-wide ones and the torrent's own. Control messages
// are tiny; the limits are felt by piece data.
type limitedConn struct {
	net.Conn
	up, down []*rate.Limiter
	ctx      context.Context
}

func limitConn(ctx context.Context, nc net.Conn, up, down []*rate.Limiter) net.Conn {
	return &limitedConn{Conn: nc, up: up, down: down, ctx: ctx}
}

// chunk is the largest slice every limiter in ls can grant at once; 0 means
// none of them limits (all unlimited).
func chunk(ls []*rate.Limiter) int {
	n := 0
	for _, l := range ls {
		if l.Limit() == rate.Inf {
			continue
		}
		if b := l.Burst(); n == 0 || b < n {
			n = b
		}
	}
	return n
}

func wait(ctx context.Context, ls []*rate.Limiter, n int) error {
	for _, l := range ls {
		if l.Limit() == rate.Inf {
			continue
		}
		if err := l.WaitN(ctx, min(n, l.Burst())); err != nil {
			return err
		}
	}
	return nil
}

func (c *limitedConn) Write(p []byte) (int, error) {
	step := chunk(c.up)
	if step == 0 {
		return c.Conn.Write(p)
	}
	written := 0
	for written < len(p) {
		n := min(len(p)-written, step)
		if err := wait(c.ctx, c.up, n); err != nil {
			return written, err
		}
		m, err := c.Conn.Write(p[written : written+n])
		written += m
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (c *limitedConn) Read(p []byte) (int, error) {
	step := chunk(c.down)
	if step == 0 {
		return c.Conn.Read(p)
	}
	if len(p) > step {
		p = p[:step]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if werr := wait(c.ctx, c.down, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// SetRates changes the session-wide limits (bytes/s, 0 = unlimited) at once,
// for connections already open too.
func (c *Client) SetRates(up, down int64) {
	setLimit(c.up, up)
	setLimit(c.down, down)
}

// SetRates changes this torrent's own limits (bytes/s, 0 = unlimited); the
// session-wide limits still apply on top.
func (t *Torrent) SetRates(up, down int64) {
	setLimit(t.up, up)
	setLimit(t.down, down)
}
