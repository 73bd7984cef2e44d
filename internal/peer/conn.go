// Package peer owns one BitTorrent connection: a reader goroutine that frames
// messages and hands them to the torrent's owner loop as events, and a writer
// goroutine that drains a bounded send queue and serves uploads by reading
// blocks from storage. It counts bytes for rates; it makes no picking or
// choking decision.
package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// Event is what a connection reports to its owner. Exactly one event with
// Err != nil is sent last, when the connection has ended.
type Event struct {
	Conn *Conn
	Msg  wire.Message // Payload is owned by the receiver; piece payloads come from a pool (see PutBlock)
	Err  error
}

// Config tunes one connection. Zero fields take defaults.
type Config struct {
	Data         io.ReaderAt   // the torrent's byte space, for serving requested blocks
	PieceLength  int64         // to map (index, begin) to an offset in Data
	MaxMsgLen    int           // largest accepted message; default wire.MaxBlock+13
	MaxUploads   int           // queued requests from the peer; more are refused (default 512)
	MaxCtrl      int           // queued control messages before the peer is dropped as stuck (default 4096)
	ReadTimeout  time.Duration // no message for this long ends the connection (default 3 min)
	WriteTimeout time.Duration // one write blocked this long ends the connection (default 60 s)
	KeepAlive    time.Duration // idle time before a keep-alive is sent (default 90 s)
}

func (c *Config) defaults() {
	if c.MaxMsgLen == 0 {
		c.MaxMsgLen = wire.MaxBlock + 13
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = 512
	}
	if c.MaxCtrl == 0 {
		c.MaxCtrl = 4096
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 3 * time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 90 * time.Second
	}
}

// ErrQueueFull ends a connection whose peer does not read what we send.
var ErrQueueFull = errors.New("peer: send queue full")

// Conn is one established connection (after the handshake).
type Conn struct {
	// static after construction
	nc       net.Conn
	ID       uint64
	Addr     netip.AddrPort
	Remote   wire.Handshake // the peer's handshake (reserved bits, peer id)
	Outbound bool
	cfg      Config

	down, up atomic.Int64 // payload bytes received / sent (piece data only)

	mu      sync.Mutex // guards the fields below
	ctrl    []wire.Message
	uploads []wire.Message // requests we will serve, in order
	closed  bool
	err     error

	wake chan struct{} // cap 1: the writer has work
	done chan struct{} // closed by Close
}

// New wraps an established connection whose handshake has been exchanged.
func New(nc net.Conn, id uint64, remote wire.Handshake, outbound bool, cfg Config) *Conn {
	cfg.defaults()
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return &Conn{
		nc: nc, ID: id, Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Remote: remote,
		Outbound: outbound, cfg: cfg,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// Downloaded and Uploaded return payload byte counters.
func (c *Conn) Downloaded() int64 { return c.down.Load() }
func (c *Conn) Uploaded() int64   { return c.up.Load() }

func (c *Conn) String() string { return c.Addr.String() }

// Run starts the reader and writer; it returns at once. The final event
// (Err set) is sent when the connection ends for any reason.
func (c *Conn) Run(ctx context.Context, events chan<- Event) {
	go func() {
		err := c.readLoop(ctx, events)
		c.closeWith(err)
		select {
		case events <- Event{Conn: c, Err: c.Err()}:
		case <-ctx.Done():
		}
	}()
	go func() {
		c.closeWith(c.writeLoop(ctx))
	}()
	go func() {
		select {
		case <-ctx.Done():
			c.closeWith(ctx.Err())
		case <-c.done:
		}
	}()
}

// Err returns why the connection ended (nil while open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() { c.closeWith(errors.New("closed locally")) }

func (c *Conn) closeWith(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if err == nil {
		err = io.EOF
	}
	c.err = err
	c.ctrl, c.uploads = nil, nil
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
}

// Send queues a control message (anything but piece data).
func (c *Conn) Send(m wire.Message) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.ctrl) >= c.cfg.MaxCtrl {
		c.mu.Unlock()
		c.closeWith(ErrQueueFull)
		return
	}
	c.ctrl = append(c.ctrl, m)
	c.mu.Unlock()
	c.signal()
}

// QueueUpload queues a block the peer requested; false if the queue is full.
func (c *Conn) QueueUpload(index, begin, length uint32) bool {
	c.mu.Lock()
	if c.closed || len(c.uploads) >= c.cfg.MaxUploads {
		c.mu.Unlock()
		return false
	}
	c.uploads = append(c.uploads, wire.Message{ID: wire.Piece, Index: index, Begin: begin, Length: length})
	c.mu.Unlock()
	c.signal()
	return true
}

// CancelUpload removes a queued request; false if it was not queued (or already sent).
func (c *Conn) CancelUpload(index, begin, length uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.uploads {
		if m.Index == index && m.Begin == begin && m.Length == length {
			c.uploads = append(c.uploads[:i], c.uploads[i+1:]...)
			return true
		}
	}
	return false
}

// ClearUploads drops every queued upload (we choked the peer) and returns them,
// so the owner can reject them when the fast extension is in use.
func (c *Conn) ClearUploads() []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.uploads
	c.uploads = nil
	return u
}

// PendingUploads is the number of queued requests we still owe the peer.
func (c *Conn) PendingUploads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.uploads)
}

func (c *Conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

var blockPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// getBlock returns a buffer of n bytes (pooled for the usual 16 KiB).
func getBlock(n int) []byte {
	if n == 16<<10 {
		return *(blockPool.Get().(*[]byte))
	}
	return make([]byte, n)
}

// PutBlock returns a piece payload received in an Event to the pool.
func PutBlock(b []byte) {
	if cap(b) == 16<<10 {
		b = b[:cap(b)]
		blockPool.Put(&b)
	}
}

// readBufSize is the read-side buffer of a connection. 64 KiB lets one read
// syscall take about four 16 KiB blocks (the wire package's default 8 KiB
// needed about two syscalls per block).
const readBufSize = 64 << 10

// deadlineSlack is how stale a read or write deadline may get before it is
// pushed forward: resetting it costs a runtime timer update, and doing that
// for every 16 KiB block showed in profiles. A blocked read or write thus
// times out after between 7/8 of the timeout and the full timeout.
func deadlineSlack(d time.Duration) time.Duration { return d / 8 }

func (c *Conn) readLoop(ctx context.Context, events chan<- Event) error {
	r := wire.NewReader(bufio.NewReaderSize(c.nc, readBufSize), c.cfg.MaxMsgLen)
	var deadline time.Time // the read deadline last set
	slack := deadlineSlack(c.cfg.ReadTimeout)
	for {
		if now := time.Now(); deadline.Sub(now) < c.cfg.ReadTimeout-slack {
			deadline = now.Add(c.cfg.ReadTimeout)
			if err := c.nc.SetReadDeadline(deadline); err != nil {
				return err
			}
		}
		m, err := r.Read()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if m.Keepalive {
			continue
		}
		// the reader's buffer is reused: copy what the owner keeps
		switch m.ID {
		case wire.Piece:
			b := getBlock(len(m.Payload))
			copy(b, m.Payload)
			m.Payload = b
			c.down.Add(int64(len(b)))
		default:
			if len(m.Payload) > 0 {
				m.Payload = append([]byte(nil), m.Payload...)
			}
		}
		select {
		case events <- Event{Conn: c, Msg: m}:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.Err()
		}
	}
}

// uploadBatch is how many queued blocks the writer serves between looks at
// the control queue, so control messages are not starved behind uploads.
const uploadBatch = 8

func (c *Conn) writeLoop(ctx context.Context) error {
	w := bufio.NewWriterSize(c.nc, 128<<10)
	var buf []byte
	var spare []wire.Message                    // the control slice the writer last drained, reused
	ups := make([]wire.Message, 0, uploadBatch) // the uploads of one batch
	var scratch []byte                          // blocks read from storage, one run at a time
	var deadline time.Time                      // the write deadline last set
	slack := deadlineSlack(c.cfg.WriteTimeout)
	keep := time.NewTimer(c.cfg.KeepAlive)
	defer keep.Stop()
	for {
		c.mu.Lock()
		ctrl := c.ctrl
		c.ctrl = spare[:0]
		ups = ups[:0]
		if len(c.uploads) > 0 {
			n := min(len(c.uploads), uploadBatch)
			ups = append(ups, c.uploads[:n]...)
			c.uploads = append(c.uploads[:0], c.uploads[n:]...)
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return nil
		}
		if len(ctrl) == 0 && len(ups) == 0 {
			spare = ctrl
			select {
			case <-c.wake:
				continue
			case <-c.done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-keep.C:
				ctrl = append(ctrl, wire.Message{Keepalive: true})
			}
		}
		buf = buf[:0]
		for _, m := range ctrl {
			buf = wire.AppendMessage(buf, m)
		}
		clear(ctrl) // drop payload references before the slice is reused
		spare = ctrl[:0]
		if now := time.Now(); deadline.Sub(now) < c.cfg.WriteTimeout-slack {
			deadline = now.Add(c.cfg.WriteTimeout)
			if err := c.nc.SetWriteDeadline(deadline); err != nil {
				return err
			}
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		var err error
		if scratch, err = c.writeUploads(w, ups, scratch); err != nil {
			return err
		}
		c.mu.Lock()
		more := len(c.ctrl) > 0 || len(c.uploads) > 0
		c.mu.Unlock()
		if !more || w.Buffered() > 64<<10 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		if !keep.Stop() {
			select {
			case <-keep.C:
			default:
			}
		}
		keep.Reset(c.cfg.KeepAlive)
	}
}

// writeUploads serves queued requests: each run of blocks that are adjacent
// in the torrent's byte space (the usual case: a peer asks for a piece's
// blocks in order) is read from storage with ONE ReadAt, then framed. It
// returns the scratch buffer, grown as needed, for reuse.
func (c *Conn) writeUploads(w *bufio.Writer, ups []wire.Message, scratch []byte) ([]byte, error) {
	var hdr [13]byte
	for i := 0; i < len(ups); {
		start := int64(ups[i].Index)*c.cfg.PieceLength + int64(ups[i].Begin)
		end := start + int64(ups[i].Length)
		j := i + 1
		for j < len(ups) && int64(ups[j].Index)*c.cfg.PieceLength+int64(ups[j].Begin) == end {
			end += int64(ups[j].Length)
			j++
		}
		if int64(cap(scratch)) < end-start {
			scratch = make([]byte, end-start)
		}
		data := scratch[:end-start]
		if _, err := c.cfg.Data.ReadAt(data, start); err != nil && !errors.Is(err, io.EOF) {
			return scratch, fmt.Errorf("read %d bytes at piece %d+%d for upload: %w", end-start, ups[i].Index, ups[i].Begin, err)
		}
		for k := i; k < j; k++ {
			u := ups[k]
			blk := data[:u.Length]
			data = data[u.Length:]
			if _, err := w.Write(wire.AppendPieceHeader(hdr[:0], u.Index, u.Begin, len(blk))); err != nil {
				return scratch, fmt.Errorf("write: %w", err)
			}
			if _, err := w.Write(blk); err != nil {
				return scratch, fmt.Errorf("write: %w", err)
			}
			c.up.Add(int64(len(blk)))
		}
		i = j
	}
	return scratch, nil
}
