package storage

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// HashPiece reads piece from s into buf (grown if shorter than the piece)
// and reports whether its SHA-1 matches the torrent. A read error is
// returned as err; a mismatch is ok=false with err nil.
func HashPiece(s io.ReaderAt, info *metainfo.Info, piece int, buf []byte) (ok bool, err error) {
	size := info.PieceSize(piece)
	if size == 0 {
		return false, fmt.Errorf("storage: piece %d out of range", piece)
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := s.ReadAt(buf, info.PieceOffset(piece))
	if int64(n) == size {
		err = nil // io.ReaderAt may return io.EOF with a full read
	}
	if err != nil {
		return false, fmt.Errorf("storage: read piece %d: %w", piece, err)
	}
	h := sha1.Sum(buf)
	want := info.PieceHash(piece)
	return bytes.Equal(h[:], want[:]), nil
}

// Verify hashes every piece with workers goroutines (0 = every core) and
// returns the set of pieces whose hash matches.
func Verify(ctx context.Context, s io.ReaderAt, info *metainfo.Info, workers int, progress func(done, total int64)) (bitfield.Bitfield, error) {
	all := bitfield.New(info.NumPieces())
	all.SetAll()
	return VerifyPieces(ctx, s, info, all, workers, progress)
}

// VerifyPieces is Verify limited to the pieces set in which (for example
// ResumeState.Check). progress is called from the calling goroutine about
// ten times a second with bytes hashed and bytes to hash, and once at the
// end. Pieces not in which are absent from the result.
func VerifyPieces(ctx context.Context, s io.ReaderAt, info *metainfo.Info, which bitfield.Bitfield, workers int, progress func(done, total int64)) (bitfield.Bitfield, error) {
	n := info.NumPieces()
	if which.Len() != n {
		return bitfield.Bitfield{}, fmt.Errorf("storage: verify: bitfield of %d bits for %d pieces", which.Len(), n)
	}
	var todo []int
	var total int64
	for p := range n {
		if which.Has(p) {
			todo = append(todo, p)
			total += info.PieceSize(p)
		}
	}
	have := bitfield.New(n)
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, len(todo))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var mu sync.Mutex // guards have and firstErr
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, info.PieceLength)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(todo)) {
					return
				}
				p := todo[i]
				ok, err := HashPiece(s, info, p, buf)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if ok {
					have.Set(p)
				}
				mu.Unlock()
				done.Add(info.PieceSize(p))
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	var tick <-chan time.Time
	if progress != nil {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for waiting := true; waiting; {
		select {
		case <-finished:
			waiting = false
		case <-tick:
			progress(done.Load(), total)
		}
	}
	if firstErr != nil {
		return have, firstErr
	}
	if err := ctx.Err(); err != nil {
		return have, err
	}
	if progress != nil {
		progress(total, total)
	}
	return have, nil
}
