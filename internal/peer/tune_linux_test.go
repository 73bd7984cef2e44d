package peer

import (
	"net"
	"syscall"
	"testing"
)

// sockopt reads an integer socket option of c.
func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func notSentLowat(t *testing.T, c net.Conn) int {
	t.Helper()
	return sockopt(t, c, syscall.IPPROTO_TCP, tcpNotSentLowat)
}

func maxPacing(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	return uint32(sockopt(t, c, syscall.SOL_SOCKET, soMaxPacingRate))
}

func TestSendQueueFollowsRate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:])
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := NewSendQueue(c)
	if got := notSentLowat(t, c); got != InitialSendQueue || q.Size() != got {
		t.Fatalf("initial queue %d (Size %d), want %d", got, q.Size(), InitialSendQueue)
	}
	for _, tc := range []struct {
		rate float64
		want int
	}{
		{2e6, 100000},        // 50 ms at 2 MB/s
		{2.1e6, 100000},      // within a quarter: unchanged
		{0, MinSendQueue},    // idle
		{1e12, MaxSendQueue}, // loopback-fast
		{1e7, 500000},
	} {
		q.Adapt(tc.rate)
		if got := notSentLowat(t, c); got != tc.want || q.Size() != tc.want {
			t.Errorf("rate %.0f: kernel %d, Size %d, want %d", tc.rate, got, q.Size(), tc.want)
		}
	}
	// Pacing: the cap reaches the kernel, and 0 lifts it again.
	for _, tc := range []struct {
		rate float64
		want uint32
	}{{1.1e6, 1100000}, {0, ^uint32(0)}, {5e5, 500000}, {-1, ^uint32(0)}} {
		q.Pace(tc.rate)
		if got := maxPacing(t, c); got != tc.want {
			t.Errorf("Pace(%.0f): kernel cap %d, want %d", tc.rate, got, tc.want)
		}
	}
	var nilq *SendQueue
	nilq.Adapt(1e6) // must not panic
	nilq.Pace(1e6)
	if nilq.Size() != 0 {
		t.Fatal("nil SendQueue")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewSendQueue(a) != nil {
		t.Fatal("a pipe got a SendQueue")
	}
}
