// The build tag keeps this file out until the owner loop has its hooks
// (fields t.streams and t.webseeds, and the calls marked HOOK in
// stream_source.go and webseed_worker.go). Remove the tag line when they
// are in.

package session

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/picker"
	"github.com/shoal-p2p/shoal/internal/webseed"
)

const (
	// maxWebseedWorkers bounds the goroutines fetching from web seeds.
	maxWebseedWorkers = 4
	// webseedIdle is how long a worker waits when the picker has nothing
	// for it (everything had or in flight elsewhere).
	webseedIdle = time.Second
	// webseedPIDBase puts web seed workers' picker IDs far from connection
	// IDs (a counter from 1).
	webseedPIDBase = picker.PeerID(1 << 62)
)

// webseedState is a torrent's web seed side. client and bytes are safe for
// concurrent use; served is owned by the run loop.
type webseedState struct {
	client *webseed.Client
	bytes  atomic.Int64   // payload bytes written from web seeds
	served map[int]string // piece → mirror that delivered it, until hashed
}

// newWebseedState returns nil when the torrent lists no usable web seed.
// HOOK: in Add, before `go t.run(ctx)`:
//
//	t.webseeds = newWebseedState(t.log, t.info, mi.URLList)
func newWebseedState(log interface{ Warn(string, ...any) }, info *metainfo.Info, urls []string) *webseedState {
	if len(urls) == 0 {
		return nil
	}
	c, err := webseed.New(info, urls, webseed.Config{UserAgent: "shoal"})
	if err != nil {
		log.Warn("web seeds unusable", "err", err)
		return nil
	}
	return &webseedState{client: c, served: map[int]string{}}
}

// WebseedBytes returns the payload bytes this torrent got from web seeds
// (the rest of Stats().Downloaded came from peers).
func (t *Torrent) WebseedBytes() int64 {
	if t.webseeds == nil {
		return 0
	}
	return t.webseeds.bytes.Load()
}

// WebseedStats returns the per-mirror measurements (nil without web seeds).
func (t *Torrent) WebseedStats() []webseed.MirrorStats {
	if t.webseeds == nil {
		return nil
	}
	return t.webseeds.client.Stats()
}

// runWebseeds starts the web seed workers and returns when they have all
// stopped (ctx ended, the torrent completed or stopped).
// HOOK: in run, after the hash workers start:
//
//	if t.webseeds != nil { go t.runWebseeds(ctx) }
func (t *Torrent) runWebseeds(ctx context.Context) {
	ws := t.webseeds
	if ws == nil {
		return
	}
	n := min(maxWebseedWorkers, len(ws.client.Stats())*webseed.DefaultMaxPerMirror)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.webseedWorker(ctx, webseedPIDBase+picker.PeerID(i))
		}()
	}
	wg.Wait()
}

// sleepCtx waits d unless ctx ends or the torrent stops or completes;
// it reports whether the worker should go on.
func (t *Torrent) sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
	case <-t.stopped:
	case <-t.done:
	}
	return false
}

// webseedWorker is one web seed "peer": it asks the owner loop for blocks
// (the picker treats it as a peer that has everything, so deadline pieces
// come first), fetches the whole pieces they belong to, and hands the data
// to the loop, which writes and hashes it like peer data.
func (t *Torrent) webseedWorker(ctx context.Context, pid picker.PeerID) {
	ws := t.webseeds
	if !t.do(func() { t.pick.PeerHaveAll(pid) }) {
		return
	}
	defer t.do(func() { t.pick.RemovePeer(pid) })
	buf := make([]byte, t.info.PieceLength)
	perPiece := int((t.info.PieceLength + blockSize - 1) / blockSize)
	for ctx.Err() == nil {
		select {
		case <-t.done:
			return
		default:
		}
		if next := ws.client.NextReady(); !next.IsZero() {
			if !t.sleepCtx(ctx, max(time.Until(next), 10*time.Millisecond)) {
				return
			}
			continue
		}
		var blocks []picker.Block
		if !t.do(func() { blocks = t.webseedPick(pid, perPiece) }) {
			return
		}
		if len(blocks) == 0 {
			if !t.sleepCtx(ctx, webseedIdle) {
				return
			}
			continue
		}
		for i, b := range blocks {
			if i > 0 && blocks[i-1].Piece == b.Piece {
				continue
			}
			n, from, err := ws.client.FetchPiece(ctx, b.Piece, buf)
			if err != nil {
				rest := blocks[i:]
				t.do(func() {
					for _, rb := range rest {
						t.pick.Cancel(pid, rb)
					}
				})
				if ctx.Err() == nil {
					t.log.Debug("web seed fetch failed", "piece", b.Piece, "err", err)
				}
				break
			}
			data := buf[:n]
			if !t.do(func() { t.webseedDeliver(pid, b.Piece, data, from) }) {
				return
			}
		}
	}
}

// webseedPick asks the picker for up to one piece's worth of blocks for the
// web seed worker pid. Called on the loop.
func (t *Torrent) webseedPick(pid picker.PeerID, n int) []picker.Block {
	if t.diskErr != nil || t.pick.Complete() {
		return nil
	}
	var best float64
	for _, m := range t.webseeds.client.Stats() {
		best = max(best, m.Throughput)
	}
	t.pick.SetPeerRate(pid, best)
	return t.pick.PickAt(pid, n, time.Now())
}

// webseedDeliver takes a whole piece fetched from mirror from and feeds its
// blocks to the picker as if they came from peer pid: blocks other peers
// have in flight are cancelled there, received ones are ignored, and a
// complete piece is hashed. Called on the loop.
func (t *Torrent) webseedDeliver(pid picker.PeerID, piece int, data []byte, from string) {
	nb := t.pick.NumBlocks(piece)
	if t.have.Has(piece) || t.diskErr != nil || int64(len(data)) != t.info.PieceSize(piece) {
		for i := range nb {
			t.pick.Cancel(pid, t.pick.BlockAt(piece, i))
		}
		return
	}
	for i := range nb {
		b := t.pick.BlockAt(piece, i)
		dup, cancels, done := t.pick.BlockReceived(pid, b)
		for _, c := range cancels {
			for _, o := range t.peers {
				if o.pid == c.Peer {
					o.conn.Send(cancelMsg(c.Block))
				}
			}
		}
		if !dup {
			off := t.info.PieceOffset(piece) + int64(b.Begin)
			if _, err := t.store.WriteAt(data[b.Begin:b.Begin+b.Length], off); err != nil {
				t.storageFailed(piece, fmt.Errorf("write piece %d: %w", piece, err))
				return
			}
			t.downloaded.Add(int64(b.Length))
			t.webseeds.bytes.Add(int64(b.Length))
			t.webseeds.served[piece] = from
		}
		if done && !t.hashing[piece] {
			t.queueHash(piece)
		}
	}
}

// webseedHashed is the owner-loop hook for a hashed piece: a failed piece a
// mirror contributed to backs that mirror off.
// HOOK: in onHashed, once r.piece is known hashed (both branches, after
// the r.piece < 0 and r.err checks): t.webseedHashed(r.piece, r.ok)
func (t *Torrent) webseedHashed(piece int, ok bool) {
	if t.webseeds == nil {
		return
	}
	if from, served := t.webseeds.served[piece]; served {
		delete(t.webseeds.served, piece)
		if !ok {
			t.log.Warn("piece from web seed failed its hash; backing the mirror off", "piece", piece, "mirror", from)
			t.webseeds.client.Penalize(from)
		}
	}
}
