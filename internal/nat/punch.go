package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// TCP simultaneous open. Both peers dial each other's public endpoint (as
// the rendezvous observed it) from the local port their rendezvous
// connection uses, so that a port-preserving NAT maps the dial to the same
// public port the other side was told about. Each outgoing SYN opens the
// sender's NAT for the other's SYN; when they cross, both kernels complete
// one connection. A refused or timed-out attempt is retried until the
// window ends.
const (
	PunchAttemptTimeout = time.Second     // one connect attempt
	PunchWindow         = 6 * time.Second // attempts per round
	PunchRetryPause     = 200 * time.Millisecond
)

// Counters count punching outcomes; safe for concurrent use.
type Counters struct {
	Attempts  atomic.Int64 // punch rounds started
	Successes atomic.Int64 // rounds that produced a direct connection
	Fallbacks atomic.Int64 // upgrades given up (the relay keeps the connection)
}

// ReuseDialer returns a dialer bound to local with SO_REUSEADDR/SO_REUSEPORT.
func ReuseDialer(local netip.AddrPort, timeout time.Duration) *net.Dialer {
	return &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: timeout, Control: reuseControl}
}

// Punch dials remote from local repeatedly until a connection is made,
// window elapses or ctx ends.
func Punch(ctx context.Context, local, remote netip.AddrPort, window time.Duration) (net.Conn, error) {
	return punch(ctx, local, remote, window, false)
}

// punch is Punch; with listen it also listens on local for the whole
// window and takes a connection from remote that arrives there. Two
// dialers whose attempts are refused at once retry in step, and on a fast
// path (loopback, a LAN) their SYNs then never cross: one side's SYN
// always meets a port with nothing behind it. A listener there completes
// the connection instead. Only a port that nothing else listens on may be
// given to it: a second listener on a shared port would split the
// arrivals with the first.
func punch(ctx context.Context, local, remote netip.AddrPort, window time.Duration, listen bool) (net.Conn, error) {
	if !local.IsValid() || local.Port() == 0 || !remote.IsValid() {
		return nil, fmt.Errorf("punch: need a bound local port and a remote endpoint (%v -> %v)", local, remote)
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	if listen {
		lc := net.ListenConfig{Control: reuseControl}
		if ln, err := lc.Listen(ctx, "tcp", local.String()); err == nil {
			defer ln.Close()
			go acceptFrom(ctx, ln, remote, accepted)
		}
	}
	d := ReuseDialer(local, PunchAttemptTimeout)
	var last error
	for n := 1; ; n++ {
		c, err := d.DialContext(ctx, "tcp", remote.String())
		if err == nil {
			select {
			case dup := <-accepted: // cannot share c's address pair, but never leak it
				dup.Close()
			default:
			}
			return c, nil
		}
		last = err
		select {
		case c := <-accepted:
			return c, nil
		case <-ctx.Done():
			select {
			case c := <-accepted:
				return c, nil
			default:
			}
			return nil, fmt.Errorf("punch %v -> %v: %d attempts: %w", local, remote, n, errors.Join(last, ErrPunchFailed))
		case <-time.After(PunchRetryPause):
		}
	}
}

// acceptFrom hands the first connection from remote to out and closes any
// other; it returns when ln is closed.
func acceptFrom(ctx context.Context, ln net.Listener, remote netip.AddrPort, out chan<- net.Conn) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr != nil || ap.Addr().Unmap() != remote.Addr().Unmap() || ap.Port() != remote.Port() || ctx.Err() != nil {
			c.Close()
			continue
		}
		select {
		case out <- c:
		default:
			c.Close()
		}
	}
}

// ErrPunchFailed means no direct connection came about; use the relay.
var ErrPunchFailed = errors.New("hole punching failed")

// ListenShared listens like net.Listen, with SO_REUSEADDR/SO_REUSEPORT set
// so that punches (ReuseDialer) can dial from the listening port. So that
// two processes do not end up sharing one port by accident, it first checks
// with an ordinary listener that the port is free.
func ListenShared(network, addr string) (net.Listener, error) {
	probe, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	addr = probe.Addr().String() // keeps a port the kernel chose for ":0"
	probe.Close()
	lc := net.ListenConfig{Control: reuseControl}
	return lc.Listen(context.Background(), network, addr)
}
