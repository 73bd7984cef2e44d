package session

import (
	"fmt"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// diskRetry is how long a torrent stays paused after a storage error before
// it tries again (the user may have freed space or fixed permissions).
const diskRetry = 10 * time.Second

// maxServeWaiters bounds the requests parked while a piece is re-checked.
const maxServeWaiters = 256

// storageFailed pauses downloading after a read or write error: the piece
// being written is dropped (fetched again later) and nothing is recorded as
// complete. The torrent retries after diskRetry; it never stops by itself.
func (t *Torrent) storageFailed(piece int, err error) {
	if t.diskErr == nil {
		t.log.Error("storage error; pausing downloads and retrying", "err", err, "retry", diskRetry)
	}
	t.diskErr = err
	t.diskErrAt = time.Now()
	if piece >= 0 && !t.have.Has(piece) {
		t.pick.PieceFailed(piece)
	}
	t.publish()
}

// retryStorage lifts a storage pause once diskRetry has passed.
func (t *Torrent) retryStorage(now time.Time) {
	if t.diskErr == nil || now.Sub(t.diskErrAt) < diskRetry {
		return
	}
	t.log.Info("retrying after storage error", "err", t.diskErr)
	t.diskErr = nil
	for _, ps := range t.peers {
		t.requestMore(ps)
	}
}

// serveRequest uploads a block of a piece we have. A piece that has not been
// hashed by this process (it came from a resume record) is checked first, so
// a seeder never serves data that fails its piece hash, even when a file was
// changed behind its back.
func (t *Torrent) serveRequest(ps *peerState, m wire.Message) bool {
	piece := int(m.Index)
	if t.checked.Has(piece) {
		return ps.conn.QueueUpload(m.Index, m.Begin, m.Length)
	}
	if t.serveWaiting >= maxServeWaiters {
		return false
	}
	t.serveWait[piece] = append(t.serveWait[piece], servePending{ps: ps, m: m})
	t.serveWaiting++
	if !t.hashing[piece] {
		t.queueHash(piece)
	}
	return true
}

type servePending struct {
	ps *peerState
	m  wire.Message
}

// onServeCheck finishes the check of a piece we believed we had.
func (t *Torrent) onServeCheck(piece int, ok bool) {
	waiters := t.serveWait[piece]
	delete(t.serveWait, piece)
	t.serveWaiting -= len(waiters)
	if ok {
		t.checked.Set(piece)
	} else {
		t.log.Error("data on disk no longer matches its piece hash; fetching it again", "piece", piece,
			"err", fmt.Errorf("file changed behind shoal's back"))
		t.have.Clear(piece)
		t.pick.Unhave(piece)
		t.left.Add(t.info.PieceSize(piece))
		t.dirty = true
		t.hashFails++
		for _, ps := range t.peers {
			t.updateInterest(ps)
			t.requestMore(ps)
		}
	}
	for _, w := range waiters {
		if _, alive := t.peers[w.ps.conn]; !alive {
			continue
		}
		if ok && !w.ps.amChoking && w.ps.conn.QueueUpload(w.m.Index, w.m.Begin, w.m.Length) {
			continue
		}
		if w.ps.fast {
			w.ps.conn.Send(wire.Message{ID: wire.Reject, Index: w.m.Index, Begin: w.m.Begin, Length: w.m.Length})
		}
	}
	t.publish()
}
