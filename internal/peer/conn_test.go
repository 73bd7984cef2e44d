package peer

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		got <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-got
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// countingReaderAt counts ReadAt calls on a byte slice.
type countingReaderAt struct {
	r     *bytes.Reader
	calls int // touched only by the writer goroutine, read after it is done
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	return c.r.ReadAt(p, off)
}

func testData(n int) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(i*7 + i>>9)
	}
	return d
}

// TestUploadsServedInOrder queues control messages and uploads (adjacent
// runs, a run that crosses a piece boundary, gaps, odd lengths) and checks
// that the peer receives exactly those messages, in order, with the right
// bytes, and that adjacent blocks were read from storage together.
func TestUploadsServedInOrder(t *testing.T) {
	const pieceLen = 32 << 10
	data := testData(4 * pieceLen)
	ra := &countingReaderAt{r: bytes.NewReader(data)}
	a, b := tcpPair(t)
	c := New(a, 1, wire.Handshake{}, true, Config{Data: ra, PieceLength: pieceLen})

	type req struct{ index, begin, length uint32 }
	reqs := []req{
		{0, 0, 16 << 10}, {0, 16 << 10, 16 << 10}, {1, 0, 16 << 10}, {1, 16 << 10, 16 << 10}, // one run of 4 across a piece boundary
		{3, 0, 1000}, {3, 1000, 500}, // odd lengths, adjacent
		{2, 16 << 10, 16 << 10}, // a gap
		{0, 0, 16 << 10},        // again, not adjacent to the one before
	}
	// queue everything before the writer runs, so the batches are predictable
	c.Send(wire.Message{ID: wire.Unchoke})
	for _, r := range reqs {
		if !c.QueueUpload(r.index, r.begin, r.length) {
			t.Fatalf("QueueUpload(%v) refused", r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 16)
	c.Run(ctx, events)

	rd := wire.NewReader(b, wire.MaxBlock+13)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := rd.Read()
	if err != nil || m.ID != wire.Unchoke {
		t.Fatalf("first message = %v, %v; want unchoke", m.ID, err)
	}
	for i, r := range reqs {
		m, err := rd.Read()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.ID != wire.Piece || m.Index != r.index || m.Begin != r.begin || len(m.Payload) != int(r.length) {
			t.Fatalf("message %d = %v %d+%d len %d, want piece %v", i, m.ID, m.Index, m.Begin, len(m.Payload), r)
		}
		off := int(r.index)*pieceLen + int(r.begin)
		if !bytes.Equal(m.Payload, data[off:off+int(r.length)]) {
			t.Fatalf("message %d: wrong bytes", i)
		}
	}
	if got, want := c.Uploaded(), int64(4*16<<10+1500+2*16<<10); got != want {
		t.Errorf("Uploaded = %d, want %d", got, want)
	}
	c.Close()
	<-c.done
	// batches of uploadBatch (8): [run of 4][run of 2][gap][again] = 4 reads;
	// one ReadAt per block would be 8
	if ra.calls != 4 {
		t.Errorf("ReadAt calls = %d, want 4 (adjacent blocks read together)", ra.calls)
	}
}

// TestReadLoopEvents sends messages from the other end and checks the
// events, the payload copies and the download counter.
func TestReadLoopEvents(t *testing.T) {
	a, b := tcpPair(t)
	c := New(a, 2, wire.Handshake{}, false, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 64)
	c.Run(ctx, events)

	block := testData(16 << 10)
	var out []byte
	out = wire.AppendMessage(out, wire.Message{ID: wire.Have, Index: 5})
	for i := 0; i < 20; i++ { // more than one read buffer's worth
		out = wire.AppendPieceHeader(out, uint32(i), 0, len(block))
		out = append(out, block...)
	}
	out = wire.AppendMessage(out, wire.Message{Keepalive: true})
	out = wire.AppendMessage(out, wire.Message{ID: wire.Extended, ExtID: 3, Payload: []byte("hello")})
	if _, err := b.Write(out); err != nil {
		t.Fatal(err)
	}
	next := func() Event {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Err != nil {
				t.Fatalf("connection ended: %v", ev.Err)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	if ev := next(); ev.Msg.ID != wire.Have || ev.Msg.Index != 5 {
		t.Fatalf("got %v %d, want have 5", ev.Msg.ID, ev.Msg.Index)
	}
	var kept [][]byte
	for i := 0; i < 20; i++ {
		ev := next()
		if ev.Msg.ID != wire.Piece || ev.Msg.Index != uint32(i) || !bytes.Equal(ev.Msg.Payload, block) {
			t.Fatalf("piece %d: got %v %d len %d", i, ev.Msg.ID, ev.Msg.Index, len(ev.Msg.Payload))
		}
		kept = append(kept, ev.Msg.Payload)
	}
	for i, p := range kept { // payloads are copies, not views of a reused buffer
		if !bytes.Equal(p, block) {
			t.Fatalf("payload %d changed after later reads", i)
		}
		PutBlock(p)
	}
	if ev := next(); ev.Msg.ID != wire.Extended || ev.Msg.ExtID != 3 || string(ev.Msg.Payload) != "hello" {
		t.Fatalf("got %v ext %d %q", ev.Msg.ID, ev.Msg.ExtID, ev.Msg.Payload)
	}
	if got := c.Downloaded(); got != 20*16<<10 {
		t.Errorf("Downloaded = %d, want %d", got, 20*16<<10)
	}
}

// TestReadTimeoutStillEnds checks that a silent peer is still dropped now
// that the read deadline is refreshed lazily.
func TestReadTimeoutStillEnds(t *testing.T) {
	a, b := tcpPair(t)
	c := New(a, 3, wire.Handshake{}, false, Config{ReadTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 4)
	c.Run(ctx, events)
	// one message first, so the deadline logic has run once
	if _, err := b.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Interested})); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Err == nil {
				continue
			}
			var ne net.Error
			if !errors.As(ev.Err, &ne) || !ne.Timeout() {
				t.Fatalf("ended with %v, want a timeout", ev.Err)
			}
			return
		case <-deadline:
			t.Fatal("a silent peer was not dropped")
		}
	}
}

// TestQueueFullCloses checks the bounded control queue.
func TestQueueFullCloses(t *testing.T) {
	a, _ := tcpPair(t)
	c := New(a, 4, wire.Handshake{}, false, Config{MaxCtrl: 3})
	for i := 0; i < 4; i++ { // not running: nothing drains the queue
		c.Send(wire.Message{ID: wire.Have, Index: uint32(i)})
	}
	if !errors.Is(c.Err(), ErrQueueFull) {
		t.Fatalf("Err = %v, want ErrQueueFull", c.Err())
	}
	if c.QueueUpload(0, 0, 16<<10) {
		t.Error("QueueUpload on a closed connection succeeded")
	}
}
