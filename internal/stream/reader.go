// Package stream serves one file of a torrent while it downloads: a Reader
// is an io.ReadSeeker whose reads and seeks move piece priority, and Handler
// serves it over HTTP with http.ServeContent (Range, If-Range, HEAD and
// conditional requests come from net/http).
//
// The package knows nothing of the engine: the session implements Source.
//
// Priorities: a Reader keeps a read-ahead window starting at its position,
// sized from the observed read rate (Config.Ahead seconds of data, at least
// Config.MinPieces pieces, at most Config.MaxPieces), and asks the Source to
// fetch those pieces with deadlines spaced by that rate: the piece under the
// read position is due now, the next one when the reader is expected to
// reach it. The first and last pieces of the file (container headers and
// indexes, e.g. an MP4 moov atom or Matroska cues) are asked for at open.
// A seek replaces the window at once; a read that reaches a missing piece
// blocks (bounded by the Reader's context) until the Source has it.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Want is one piece a reader needs, and when.
type Want struct {
	Piece    int
	Deadline time.Time
}

// Source is the torrent as a Reader sees it. The session implements it; all
// methods are called from the reader's goroutine and must be safe for
// concurrent use by several readers.
type Source interface {
	// ReadAt reads torrent bytes (the whole torrent's byte space) that lie
	// in pieces reported ready.
	ReadAt(p []byte, off int64) (int, error)
	// PieceReady reports whether piece is verified and readable.
	PieceReady(piece int) bool
	// WaitPiece blocks until piece is ready or ctx ends (returning its
	// error) or the torrent stops (another error).
	WaitPiece(ctx context.Context, piece int) error
	// Prioritize replaces the set of pieces reader wants, nearest deadline
	// first; nil releases every piece the reader asked for. reader is an ID
	// unique to one Reader of the process.
	Prioritize(reader uint64, wants []Want)
}

// Config tunes a Reader. Zero values take the defaults.
type Config struct {
	Ahead       time.Duration    // read-ahead window in time at the observed rate (8 s)
	MinPieces   int              // smallest window (4 pieces)
	MaxPieces   int              // largest window (256 pieces)
	InitialRate float64          // bytes/s assumed before any is measured (1 MB/s)
	HeadBytes   int64            // bytes at the start of the file asked for at open (1 piece minimum; 256 KiB)
	TailBytes   int64            // bytes at the end of the file asked for at open (2 MiB)
	Now         func() time.Time // clock; time.Now if nil
}

func (c *Config) defaults() {
	if c.Ahead <= 0 {
		c.Ahead = 8 * time.Second
	}
	if c.MinPieces <= 0 {
		c.MinPieces = 4
	}
	if c.MaxPieces <= 0 {
		c.MaxPieces = 256
	}
	c.MaxPieces = max(c.MaxPieces, c.MinPieces)
	if c.InitialRate <= 0 {
		c.InitialRate = 1e6
	}
	if c.HeadBytes <= 0 {
		c.HeadBytes = 256 << 10
	}
	if c.TailBytes <= 0 {
		c.TailBytes = 2 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// reprioritizeEvery bounds how long a window may go stale while the reader
// stays within one piece.
const reprioritizeEvery = time.Second

var nextReaderID atomic.Uint64

// Reader reads one file of a torrent. It is an io.ReadSeekCloser for one
// goroutine at a time (like *os.File used with ServeContent); every field is
// owned by that goroutine, and info, src, the file geometry and cfg are
// static after NewReader.
type Reader struct {
	ctx   context.Context
	src   Source
	info  *metainfo.Info
	cfg   Config
	id    uint64
	start int64 // file's offset in the torrent
	size  int64 // file length

	pos      int64
	ready    []bool // pieces known ready (never become unready)
	closed   bool
	rate     rateMeter
	lastWin  int       // first piece of the last window sent
	lastPrio time.Time // when it was sent
	headTail []int     // header and index pieces still missing
	waited   time.Duration
}

// NewReader returns a Reader over file fileIndex of info. Reads block at
// most until ctx ends. It asks src for the file's first and last pieces at
// once.
func NewReader(ctx context.Context, src Source, info *metainfo.Info, fileIndex int, cfg Config) (*Reader, error) {
	if fileIndex < 0 || fileIndex >= len(info.Files) {
		return nil, fmt.Errorf("stream: file %d of %d", fileIndex, len(info.Files))
	}
	f := info.Files[fileIndex]
	if f.Padding {
		return nil, fmt.Errorf("stream: file %d is padding", fileIndex)
	}
	cfg.defaults()
	r := &Reader{
		ctx: ctx, src: src, info: info, cfg: cfg, id: nextReaderID.Add(1),
		start: f.Offset, size: f.Length,
		ready: make([]bool, info.NumPieces()), lastWin: -1,
	}
	r.rate.init(cfg.InitialRate)
	if r.size > 0 {
		seen := map[int]bool{}
		add := func(off, n int64) {
			first, last := r.pieceOf(off), r.pieceOf(off+n-1)
			for q := first; q <= last; q++ {
				if !seen[q] {
					seen[q] = true
					r.headTail = append(r.headTail, q)
				}
			}
		}
		add(0, min(r.size, max(cfg.HeadBytes, 1)))
		tail := min(r.size, cfg.TailBytes)
		add(r.size-tail, tail)
	}
	r.prioritize(true)
	return r, nil
}

// Size returns the file's length.
func (r *Reader) Size() int64 { return r.size }

// ID returns the reader's ID passed to Source.Prioritize.
func (r *Reader) ID() uint64 { return r.id }

// Rate returns the observed read rate in bytes/s (the initial guess until
// measured).
func (r *Reader) Rate() float64 { return r.rate.value() }

// Waited returns the total time reads spent blocked on missing pieces.
func (r *Reader) Waited() time.Duration { return r.waited }

func (r *Reader) pieceOf(fileOff int64) int {
	return int((r.start + fileOff) / r.info.PieceLength)
}

func (r *Reader) isReady(q int) bool {
	if r.ready[q] {
		return true
	}
	if r.src.PieceReady(q) {
		r.ready[q] = true
		return true
	}
	return false
}

// Read reads from the current position, blocking until the piece under it
// is ready. It returns what the ready pieces from the position hold (at
// most len(p)).
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("stream: read after close")
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := min(int64(len(p)), r.size-r.pos)
	q := r.pieceOf(r.pos)
	if !r.isReady(q) {
		r.prioritize(true) // the window may be stale: the blocking piece goes first
		t0 := r.cfg.Now()
		err := r.src.WaitPiece(r.ctx, q)
		w := r.cfg.Now().Sub(t0)
		r.waited += w
		r.rate.pause(w)
		if err != nil {
			return 0, fmt.Errorf("stream: waiting for piece %d: %w", q, err)
		}
		r.ready[q] = true
	}
	// Extend the read over following ready pieces.
	end := r.info.PieceOffset(q) + r.info.PieceSize(q) - r.start // file offset where q ends
	for end < r.pos+n {
		next := q + 1
		if next >= len(r.ready) || !r.isReady(next) {
			break
		}
		q = next
		end += r.info.PieceSize(q)
	}
	n = min(n, end-r.pos)
	got, err := r.src.ReadAt(p[:n], r.start+r.pos)
	r.pos += int64(got)
	r.rate.add(r.cfg.Now(), got)
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return got, fmt.Errorf("stream: read at %d: %w", r.start+r.pos, err)
	}
	r.prioritize(false)
	return got, nil
}

// Seek sets the position (io.Seeker) and re-prioritises at once when it
// moved.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("stream: seek: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("stream: seek to negative offset %d", abs)
	}
	if abs != r.pos {
		r.pos = abs
		r.rate.reset()
		r.prioritize(true)
	}
	return abs, nil
}

// Close releases the reader's priorities. It is idempotent.
func (r *Reader) Close() error {
	if !r.closed {
		r.closed = true
		r.src.Prioritize(r.id, nil)
	}
	return nil
}

// Window returns the pieces the reader currently wants, nearest deadline
// first (what it last passed, or would pass, to Prioritize).
func (r *Reader) Window() []Want { return r.window(r.cfg.Now()) }

// prioritize sends the window to the source when force is set, when the
// read position entered another piece, or when the last window is older
// than reprioritizeEvery.
func (r *Reader) prioritize(force bool) {
	if r.closed {
		return
	}
	now := r.cfg.Now()
	first := -1
	if r.pos < r.size {
		first = r.pieceOf(r.pos)
	}
	if !force && first == r.lastWin && now.Sub(r.lastPrio) < reprioritizeEvery {
		return
	}
	r.lastWin, r.lastPrio = first, now
	r.src.Prioritize(r.id, r.window(now))
}

// window computes the wanted pieces: the missing header and index pieces
// (due now, then spaced by the rate), the piece under the read position
// (due now), then the read-ahead, each due when the reader should reach it.
func (r *Reader) window(now time.Time) []Want {
	var out []Want
	rate := r.rate.value()
	// Header and index pieces: still missing ones keep coming first until
	// the reader passes the head (then only missing tail ones remain).
	keep := r.headTail[:0]
	for _, q := range r.headTail {
		if !r.isReady(q) {
			keep = append(keep, q)
		}
	}
	r.headTail = keep
	if r.pos >= r.size {
		for i, q := range r.headTail {
			out = append(out, Want{Piece: q, Deadline: now.Add(time.Duration(i) * time.Millisecond)})
		}
		return out
	}
	seen := map[int]bool{}
	first := r.pieceOf(r.pos)
	lastFile := r.pieceOf(r.size - 1)
	bytesAhead := int64(rate * r.cfg.Ahead.Seconds())
	pieces := int(bytesAhead/r.info.PieceLength) + 1
	pieces = min(max(pieces, r.cfg.MinPieces), r.cfg.MaxPieces)
	last := min(first+pieces-1, lastFile)
	for q := first; q <= last; q++ {
		if r.isReady(q) {
			continue
		}
		due := now
		if q > first {
			dist := r.info.PieceOffset(q) - (r.start + r.pos)
			due = now.Add(time.Duration(float64(dist) / rate * float64(time.Second)))
		}
		out = append(out, Want{Piece: q, Deadline: due})
		seen[q] = true
	}
	// Missing header/index pieces not in the window: due right after the
	// piece under the read position, so a player's first probes are fast.
	for i, q := range r.headTail {
		if !seen[q] {
			out = append(out, Want{Piece: q, Deadline: now.Add(time.Duration(i+1) * time.Millisecond)})
		}
	}
	sortWants(out)
	return out
}

func sortWants(w []Want) {
	slices.SortStableFunc(w, func(a, b Want) int { return a.Deadline.Compare(b.Deadline) })
}
