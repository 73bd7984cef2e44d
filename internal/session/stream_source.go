// The build tag keeps this file out until the owner loop has its hooks
// (fields t.streams and t.webseeds, and the calls marked HOOK in
// stream_source.go and webseed_worker.go). Remove the tag line when they
// are in.

package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-p2p/shoal/internal/stream"
)

// streamState records what stream readers want. Owned by the run loop
// (every access is inside a t.do closure or a loop hook); t.streams is nil
// until the first reader asks for something.
type streamState struct {
	wants   map[uint64][]stream.Want // per reader, nearest deadline first
	waiters map[int][]chan struct{}  // closed when the piece is verified
	marked  map[int]bool             // pieces given a deadline in the picker
}

// ErrStopped is returned by stream reads once the torrent has shut down.
var ErrStopped = errors.New("session: torrent stopped")

// streamSource implements stream.Source on a torrent.
type streamSource struct{ t *Torrent }

// StreamSource returns the torrent as a stream.Source for stream.NewReader.
func (t *Torrent) StreamSource() stream.Source { return streamSource{t} }

func (t *Torrent) streamState() *streamState {
	if t.streams == nil {
		t.streams = &streamState{wants: map[uint64][]stream.Want{}, waiters: map[int][]chan struct{}{}, marked: map[int]bool{}}
	}
	return t.streams
}

// ReadAt reads verified bytes straight from storage (storage is safe for
// concurrent readers; peers upload from it the same way).
func (s streamSource) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.t.store.ReadAt(p, off)
	if err != nil {
		return n, fmt.Errorf("read torrent data at %d: %w", off, err)
	}
	return n, nil
}

// PieceReady asks the owner loop. Readers cache the answer, so this is
// called about once per piece.
func (s streamSource) PieceReady(piece int) bool {
	select {
	case <-s.t.done:
		return true
	default:
	}
	ready := false
	s.t.do(func() { ready = s.t.have.Has(piece) })
	return ready
}

// WaitPiece registers a waiter with the owner loop and blocks until the
// loop's streamPieceDone hook closes it, ctx ends or the torrent stops.
func (s streamSource) WaitPiece(ctx context.Context, piece int) error {
	if piece < 0 || piece >= s.t.info.NumPieces() {
		return fmt.Errorf("piece %d out of range", piece)
	}
	var ch chan struct{}
	ok := s.t.do(func() {
		if s.t.have.Has(piece) {
			return
		}
		st := s.t.streamState()
		ch = make(chan struct{})
		st.waiters[piece] = append(st.waiters[piece], ch)
	})
	if !ok {
		return ErrStopped
	}
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err() // the waiter is dropped when the piece arrives
	case <-s.t.stopped:
		return ErrStopped
	}
}

// Prioritize replaces one reader's wants and re-applies the union of all
// readers' deadlines to the picker at once, then tops up every peer's
// requests so a seek takes effect without waiting for the next tick.
func (s streamSource) Prioritize(reader uint64, wants []stream.Want) {
	w := append([]stream.Want(nil), wants...)
	s.t.do(func() {
		st := s.t.streamState()
		if len(w) == 0 {
			delete(st.wants, reader)
		} else {
			st.wants[reader] = w
		}
		if s.t.applyStreamDeadlines() {
			s.t.preemptForDeadlines()
		}
		for _, ps := range s.t.peers {
			s.t.requestMore(ps)
		}
	})
}

// applyStreamDeadlines sets the picker's deadlines to the union of every
// reader's wants (the nearest deadline per piece). Called on the loop. It
// reports whether a piece gained a deadline within urgentWithin (an open or
// a seek), which makes already queued requests worth preempting.
func (t *Torrent) applyStreamDeadlines() (urgent bool) {
	st := t.streamState()
	next := map[int]time.Time{}
	for _, ws := range st.wants {
		for _, w := range ws {
			if w.Piece < 0 || w.Piece >= t.info.NumPieces() || t.have.Has(w.Piece) {
				continue
			}
			if at, ok := next[w.Piece]; !ok || w.Deadline.Before(at) {
				next[w.Piece] = w.Deadline
			}
		}
	}
	for q := range st.marked {
		if _, ok := next[q]; !ok {
			t.pick.SetDeadline(q, time.Time{})
			delete(st.marked, q)
		}
	}
	now := time.Now()
	for q, at := range next {
		if !st.marked[q] && at.Sub(now) < urgentWithin {
			urgent = true
		}
		t.pick.SetDeadline(q, at)
		st.marked[q] = true
	}
	return urgent
}

// urgentWithin: a newly wanted piece due this soon preempts queued requests.
const urgentWithin = 3 * time.Second

// preemptForDeadlines withdraws requests for pieces nobody is waiting for,
// so the pieces a reader needs now are not served behind a queue of others
// (at a slow peer, 32 queued blocks can be seconds of transfer). Blocks
// already on the wire are still accepted if they arrive.
func (t *Torrent) preemptForDeadlines() {
	n := 0
	for _, ps := range t.peers {
		for _, b := range t.pick.InflightWithoutDeadline(ps.pid) {
			t.pick.Cancel(ps.pid, b)
			ps.conn.Send(cancelMsg(b))
			n++
		}
	}
	t.log.Debug("stream: preempted queued requests for deadline pieces", "cancelled", n)
}

// streamPieceDone is the owner-loop hook for a verified piece: it wakes the
// readers waiting for it. HOOK: call from onHashed right after
// t.pick.MarkHave(r.piece).
func (t *Torrent) streamPieceDone(piece int) {
	if t.streams == nil {
		return
	}
	for _, ch := range t.streams.waiters[piece] {
		close(ch)
	}
	delete(t.streams.waiters, piece)
	delete(t.streams.marked, piece) // MarkHave dropped the picker's deadline
}
