package peer

import (
	"net"
	"syscall"
	"time"
)

// Bounds of the kernel send queue kept per peer connection (see SendQueue).
const (
	MinSendQueue     = 32 << 10
	MaxSendQueue     = 4 << 20
	InitialSendQueue = 256 << 10 // until the first rate is known
	// SendQueueTime is how much upload time the kernel may hold unsent.
	SendQueueTime = 50 * time.Millisecond
)

// SendQueue sizes the kernel's share of a connection's upload queue
// (TCP_NOTSENT_LOWAT on Linux): written bytes that have not yet gone out
// are kept to about SendQueueTime at the connection's upload rate, within
// MinSendQueue and MaxSendQueue. The rest of the queue stays in our own
// upload queue, where a CANCEL (endgame) or a choke still removes it. Bytes in
// flight (the congestion window) are not limited, so long fast links keep
// their speed, and a fast loopback transfer gets a queue of megabytes.
type SendQueue struct {
	raw  syscall.RawConn
	cur  int
	pace uint32 // SO_MAX_PACING_RATE last set, bytes/s; 0 = never set (unlimited)
}

// NewSendQueue returns the tuner of c, or nil when c is not a socket.
func NewSendQueue(c net.Conn) *SendQueue {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	q := &SendQueue{raw: raw}
	q.set(InitialSendQueue)
	return q
}

// Adapt sets the queue for an upload rate in bytes/s. Changes under a
// quarter are skipped to save system calls. Safe on a nil SendQueue.
func (q *SendQueue) Adapt(rate float64) {
	if q == nil {
		return
	}
	n := int(min(max(rate*SendQueueTime.Seconds(), MinSendQueue), MaxSendQueue))
	if d := n - q.cur; d*4 > q.cur || -d*4 > q.cur {
		q.set(n)
	}
}

// Size is the queue last set, in bytes (0 for nil).
func (q *SendQueue) Size() int {
	if q == nil {
		return 0
	}
	return q.cur
}

func (q *SendQueue) set(n int) {
	q.cur = n
	q.raw.Control(func(fd uintptr) { setNotSentLowat(fd, n) })
}

// Pace caps the connection's send rate at bytesPerSec (the kernel paces the
// packets out); 0 or less removes the cap. Safe on a nil SendQueue.
func (q *SendQueue) Pace(bytesPerSec float64) {
	if q == nil {
		return
	}
	v := uint32(0)
	if bytesPerSec > 0 {
		v = uint32(min(max(bytesPerSec, 1), float64(^uint32(0)-1)))
	}
	if v == q.pace {
		return
	}
	q.pace = v
	q.raw.Control(func(fd uintptr) { setMaxPacing(fd, v) })
}
