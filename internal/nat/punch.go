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
	if !local.IsValid() || local.Port() == 0 || !remote.IsValid() {
		return nil, fmt.Errorf("punch: need a bound local port and a remote endpoint (%v -> %v)", local, remote)
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	d := ReuseDialer(local, PunchAttemptTimeout)
	var last error
	for n := 1; ; n++ {
		c, err := d.DialContext(ctx, "tcp", remote.String())
		if err == nil {
			return c, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("punch %v -> %v: %d attempts: %w", local, remote, n, errors.Join(last, ErrPunchFailed))
		case <-time.After(PunchRetryPause):
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
