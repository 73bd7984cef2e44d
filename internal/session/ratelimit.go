package session

import (
	"context"
	"net"

	"golang.org/x/time/rate"
)

// limitBurst is the token bucket depth: one 16 KiB block plus its header,
// so a limit is smooth at block granularity.
const limitBurst = 64 << 10

// newLimiter returns a byte-rate limiter, or nil for "unlimited" (<= 0).
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), max(limitBurst, int(bytesPerSec/10)))
}

// limitedConn applies shared upload (Write) and download (Read) limits to a
// connection. Control messages are tiny; the limit is felt by piece data.
type limitedConn struct {
	net.Conn
	up, down *rate.Limiter
	ctx      context.Context
}

func limitConn(ctx context.Context, nc net.Conn, up, down *rate.Limiter) net.Conn {
	if up == nil && down == nil {
		return nc
	}
	return &limitedConn{Conn: nc, up: up, down: down, ctx: ctx}
}

func (c *limitedConn) Write(p []byte) (int, error) {
	if c.up == nil {
		return c.Conn.Write(p)
	}
	written := 0
	for written < len(p) {
		n := min(len(p)-written, c.up.Burst())
		if err := c.up.WaitN(c.ctx, n); err != nil {
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
	if c.down == nil {
		return c.Conn.Read(p)
	}
	if len(p) > c.down.Burst() {
		p = p[:c.down.Burst()]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if werr := c.down.WaitN(c.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}
