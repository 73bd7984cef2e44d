package stream

import (
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// buildTorrent returns an Info (through ParseInfo, so it is realistic) and
// the torrent's content for files of the given sizes.
func buildTorrent(t testing.TB, pieceLen int64, names []string, sizes []int64) (*metainfo.Info, []byte) {
	t.Helper()
	var total int64
	for _, s := range sizes {
		total += s
	}
	data := make([]byte, total)
	rng := rand.New(rand.NewPCG(1, uint64(total)))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var pieces []byte
	for off := int64(0); off < total; off += pieceLen {
		h := sha1.Sum(data[off:min(off+pieceLen, total)])
		pieces = append(pieces, h[:]...)
	}
	dict := map[string]any{"name": "t", "piece length": pieceLen, "pieces": pieces}
	if len(names) == 1 {
		dict["name"] = names[0]
		dict["length"] = sizes[0]
	} else {
		var files []any
		for i, n := range names {
			files = append(files, map[string]any{"length": sizes[i], "path": []string{n}})
		}
		dict["files"] = files
	}
	raw, err := bencode.Marshal(dict)
	if err != nil {
		t.Fatal(err)
	}
	info, err := metainfo.ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info, data
}

// fakeSource is an in-memory Source: pieces become ready when the test (or
// a simulated downloader) says so. It records every Prioritize call.
type fakeSource struct {
	info *metainfo.Info
	data []byte

	mu      sync.Mutex
	ready   []bool
	changed chan struct{} // closed and replaced when a piece becomes ready
	wants   map[uint64][]Want
	calls   []prioCall
	stopped bool
}

type prioCall struct {
	reader uint64
	wants  []Want
}

func newFake(info *metainfo.Info, data []byte) *fakeSource {
	return &fakeSource{info: info, data: data, ready: make([]bool, info.NumPieces()),
		changed: make(chan struct{}), wants: map[uint64][]Want{}}
}

func (f *fakeSource) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Only ready pieces may be read: a Reader that reads ahead of
	// readiness is a bug this catches.
	for q := int(off / f.info.PieceLength); q <= int((off+int64(len(p))-1)/f.info.PieceLength); q++ {
		if !f.ready[q] {
			return 0, errors.New("fake: read of a piece that is not ready")
		}
	}
	return copy(p, f.data[off:]), nil
}

func (f *fakeSource) PieceReady(q int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready[q]
}

func (f *fakeSource) WaitPiece(ctx context.Context, q int) error {
	for {
		f.mu.Lock()
		if f.ready[q] {
			f.mu.Unlock()
			return nil
		}
		if f.stopped {
			f.mu.Unlock()
			return errors.New("fake: stopped")
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeSource) Prioritize(reader uint64, wants []Want) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := append([]Want(nil), wants...)
	if w == nil {
		delete(f.wants, reader)
	} else {
		f.wants[reader] = w
	}
	f.calls = append(f.calls, prioCall{reader, w})
}

func (f *fakeSource) setReady(q int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready[q] = true
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeSource) lastWants(reader uint64) []Want {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Want(nil), f.wants[reader]...)
}

func (f *fakeSource) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// download simulates an engine that completes the wanted piece with the
// nearest deadline (over all readers), else the lowest missing piece, one
// per step, until every piece is ready or ctx ends. order receives the
// pieces in completion order.
func (f *fakeSource) download(ctx context.Context, step time.Duration) (order chan int) {
	order = make(chan int, f.info.NumPieces())
	go func() {
		defer close(order)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(step):
			}
			f.mu.Lock()
			next := -1
			var due time.Time
			for _, ws := range f.wants {
				for _, w := range ws {
					if !f.ready[w.Piece] && (next < 0 || w.Deadline.Before(due)) {
						next, due = w.Piece, w.Deadline
					}
				}
			}
			if next < 0 {
				for q, r := range f.ready {
					if !r {
						next = q
						break
					}
				}
			}
			f.mu.Unlock()
			if next < 0 {
				return
			}
			f.setReady(next)
			order <- next
		}
	}()
	return order
}
