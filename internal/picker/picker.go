package picker

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/shoal-p2p/shoal/internal/bitfield"
)

// PeerID is an opaque peer handle chosen by the caller.
type PeerID uint64

// Block is a byte range of one piece: the unit of a REQUEST.
type Block struct{ Piece, Begin, Length int }

// Request is a block in flight to a peer.
type Request struct {
	Peer  PeerID
	Block Block
}

// Priority orders wanted pieces. Skip pieces are never requested.
type Priority int8

// Piece priorities. Pieces above Normal form the "hot" set that is picked
// first, by priority then by index.
const (
	Skip   Priority = 0
	Normal Priority = 1
	High   Priority = 2
	Urgent Priority = 3 // e.g. the piece a stream reader is blocked on
)

const (
	// DefaultBlockSize is the request size every client accepts.
	DefaultBlockSize = 16384
	// DefaultRandomFirst is how many pieces are picked at random before rarest first.
	DefaultRandomFirst = 4
	// MaxDuplicates bounds how many peers one block is in flight to during endgame.
	MaxDuplicates = 2
)

// Config is the torrent geometry and policy. It is read once by New.
type Config struct {
	NumPieces   int
	PieceLength int64 // every piece but the last
	TotalLength int64 // content size; the last piece is the remainder
	BlockSize   int   // DefaultBlockSize if 0
	RandomFirst int   // DefaultRandomFirst if 0; -1 for none
}

// Validate reports whether the geometry is consistent. New does not fail:
// it clamps an invalid Config to something that cannot panic, so callers
// with untrusted input should Validate first (metainfo normally has).
func (c Config) Validate() error {
	switch {
	case c.NumPieces < 0:
		return fmt.Errorf("picker: negative piece count %d", c.NumPieces)
	case c.PieceLength <= 0 && c.NumPieces > 0:
		return fmt.Errorf("picker: piece length %d", c.PieceLength)
	case c.BlockSize < 0:
		return fmt.Errorf("picker: block size %d", c.BlockSize)
	case c.NumPieces == 0:
		if c.TotalLength != 0 {
			return errors.New("picker: content without pieces")
		}
		return nil
	}
	if int64(c.NumPieces-1) > (c.TotalLength-1)/c.PieceLength {
		return fmt.Errorf("picker: %d pieces of %d bytes exceed total length %d", c.NumPieces, c.PieceLength, c.TotalLength)
	}
	last := c.TotalLength - int64(c.NumPieces-1)*c.PieceLength
	if last <= 0 || last > c.PieceLength {
		return fmt.Errorf("picker: total length %d does not fit %d pieces of %d bytes", c.TotalLength, c.NumPieces, c.PieceLength)
	}
	return nil
}

// Picker holds the download state of one torrent. Every field is owned by
// the caller's goroutine (the torrent run loop); geometry and rng are set by
// New and static afterwards.
type Picker struct {
	n           int
	pieceLen    int
	lastLen     int
	blockSize   int
	randomFirst int
	rng         *rand.Rand

	have    bitfield.Bitfield
	numHave int
	prio    []Priority
	wanted  int // pieces with prio > Skip that we do not have
	pending int // free blocks of wanted pieces: 0 means endgame
	hot     []int
	hotPos  []int32 // index into hot, -1 if absent

	avail []int32 // peers with a bitfield/HAVE for the piece (HaveAll peers are counted in seeds)
	seeds int

	peers    map[PeerID]*peerState
	states   []*pieceState // nil: piece not started
	active   []int         // pieces with a state
	pool     []*pieceState
	failedBy map[int][]PeerID // suppliers of a piece's last failed attempt
	dl       deadlineState    // streaming deadlines (deadline.go)
}

type peerState struct {
	bf          bitfield.Bitfield // pieces it has; unused when all
	all         bool              // HAVE ALL or a full bitfield
	interesting int               // pieces in bf we want and lack (when !all)
	inflight    map[Block]uint32  // block -> request sequence number (seq at assignment)
	seq         uint32            // requests ever assigned to the peer
	cur         int               // piece it is working on, -1 for none
}

type pieceState struct {
	piece     int
	pos       int // index in Picker.active
	blocks    []blockState
	free      int // blocks neither received nor in flight
	received  int
	hint      int // no free block before this index
	suppliers []PeerID
}

type blockState struct {
	owners   [MaxDuplicates]PeerID
	n        uint8
	received bool
	from     PeerID // who supplied it, once received
}

// New returns a picker for the geometry in cfg with every piece wanted at
// Normal priority and none had. rng supplies all randomness.
func New(cfg Config, rng *rand.Rand) *Picker {
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	n := max(cfg.NumPieces, 0)
	pl := cfg.PieceLength
	if pl <= 0 {
		pl = 1
	}
	if pl > 1<<30 {
		pl = 1 << 30
	}
	last := pl
	if n > 0 {
		if l := cfg.TotalLength - int64(n-1)*pl; l > 0 && l <= pl {
			last = l
		}
	}
	bs := cfg.BlockSize
	if bs <= 0 {
		bs = DefaultBlockSize
	}
	rf := cfg.RandomFirst
	if rf == 0 {
		rf = DefaultRandomFirst
	}
	if rf < 0 {
		rf = 0
	}
	p := &Picker{
		n: n, pieceLen: int(pl), lastLen: int(last), blockSize: bs, randomFirst: rf, rng: rng,
		have:     bitfield.New(n),
		prio:     make([]Priority, n),
		wanted:   n,
		hotPos:   make([]int32, n),
		avail:    make([]int32, n),
		peers:    make(map[PeerID]*peerState),
		states:   make([]*pieceState, n),
		failedBy: make(map[int][]PeerID),
	}
	for i := range n {
		p.prio[i] = Normal
		p.hotPos[i] = -1
		p.pending += p.NumBlocks(i)
	}
	return p
}

// NumPieces returns the number of pieces.
func (p *Picker) NumPieces() int { return p.n }

// PieceSize returns the byte length of piece; 0 if out of range.
func (p *Picker) PieceSize(piece int) int {
	switch {
	case piece < 0 || piece >= p.n:
		return 0
	case piece == p.n-1:
		return p.lastLen
	}
	return p.pieceLen
}

// NumBlocks returns how many blocks piece has; 0 if out of range.
func (p *Picker) NumBlocks(piece int) int {
	return (p.PieceSize(piece) + p.blockSize - 1) / p.blockSize
}

// BlockAt returns block i of piece (the last one may be short).
func (p *Picker) BlockAt(piece, i int) Block {
	begin := i * p.blockSize
	return Block{Piece: piece, Begin: begin, Length: min(p.blockSize, p.PieceSize(piece)-begin)}
}

// ValidBlock reports whether b is exactly one block of this torrent's
// geometry (what Pick hands out and BlockReceived accepts).
func (p *Picker) ValidBlock(b Block) bool {
	_, ok := p.blockIndex(b)
	return ok
}

func (p *Picker) blockIndex(b Block) (int, bool) {
	if b.Piece < 0 || b.Piece >= p.n || b.Begin < 0 || b.Begin%p.blockSize != 0 {
		return 0, false
	}
	i := b.Begin / p.blockSize
	if i >= p.NumBlocks(b.Piece) || p.BlockAt(b.Piece, i) != b {
		return 0, false
	}
	return i, true
}

// Have reports whether piece is verified and stored.
func (p *Picker) Have(piece int) bool { return p.have.Has(piece) }

// NumHave returns the number of verified pieces.
func (p *Picker) NumHave() int { return p.numHave }

// Complete reports whether every piece not set to Skip is had.
func (p *Picker) Complete() bool { return p.wanted == 0 }

// InEndgame reports whether every block of every wanted piece is received
// or in flight while some wanted piece is still missing.
func (p *Picker) InEndgame() bool { return p.pending == 0 && p.wanted > 0 }

// Availability returns how many known peers have piece.
func (p *Picker) Availability(piece int) int {
	if piece < 0 || piece >= p.n {
		return 0
	}
	return int(p.avail[piece]) + p.seeds
}

// Priority returns the priority of piece.
func (p *Picker) Priority(piece int) Priority {
	if piece < 0 || piece >= p.n {
		return Skip
	}
	return p.prio[piece]
}

func (p *Picker) wantedPiece(q int) bool { return p.prio[q] > Skip && !p.have.Has(q) }

func (ps *peerState) has(q int) bool { return ps.all || ps.bf.Has(q) }

// freeOf returns the free blocks of piece q.
func (p *Picker) freeOf(q int) int {
	if st := p.states[q]; st != nil {
		return st.free
	}
	return p.NumBlocks(q)
}

// MarkHave records that piece is verified and stored (also for pieces found
// on disk at startup). Anything still in flight for it is forgotten.
func (p *Picker) MarkHave(piece int) {
	if piece < 0 || piece >= p.n || p.have.Has(piece) {
		return
	}
	if p.prio[piece] > Skip {
		p.wanted--
		p.pending -= p.freeOf(piece)
		for _, ps := range p.peers {
			if !ps.all && ps.bf.Has(piece) {
				ps.interesting--
			}
		}
	}
	p.hotRemove(piece)
	delete(p.dl.at, piece)
	p.have.Set(piece)
	p.numHave++
	if st := p.states[piece]; st != nil {
		for i := range st.blocks {
			p.releaseAll(st, i)
		}
		p.dropState(st)
	}
	delete(p.failedBy, piece)
}

// SetPriority changes the priority of piece. Lowering a piece to Skip keeps
// its in-flight requests; they simply are not renewed.
func (p *Picker) SetPriority(piece int, prio Priority) {
	if piece < 0 || piece >= p.n {
		return
	}
	prio = max(Skip, min(prio, Urgent))
	old := p.prio[piece]
	if old == prio {
		return
	}
	p.prio[piece] = prio
	if p.have.Has(piece) {
		return
	}
	if (old > Skip) != (prio > Skip) {
		d := 1
		if prio == Skip {
			d = -1
		}
		p.wanted += d
		p.pending += d * p.freeOf(piece)
		for _, ps := range p.peers {
			if !ps.all && ps.bf.Has(piece) {
				ps.interesting += d
			}
		}
	}
	if _, dl := p.dl.at[piece]; prio > Normal || (dl && prio > Skip) {
		p.hotAdd(piece)
	} else {
		p.hotRemove(piece)
	}
}

func (p *Picker) hotAdd(q int) {
	if p.hotPos[q] >= 0 {
		return
	}
	p.hotPos[q] = int32(len(p.hot))
	p.hot = append(p.hot, q)
}

func (p *Picker) hotRemove(q int) {
	i := p.hotPos[q]
	if i < 0 {
		return
	}
	last := p.hot[len(p.hot)-1]
	p.hot[i] = last
	p.hotPos[last] = i
	p.hot = p.hot[:len(p.hot)-1]
	p.hotPos[q] = -1
}

// BlockPeers returns the peers that supplied received blocks of piece,
// deduplicated. After PieceFailed, until a block of the new attempt
// arrives, it returns the suppliers of the failed attempt.
func (p *Picker) BlockPeers(piece int) []PeerID {
	if piece < 0 || piece >= p.n {
		return nil
	}
	if st := p.states[piece]; st != nil && len(st.suppliers) > 0 {
		return append([]PeerID(nil), st.suppliers...)
	}
	return append([]PeerID(nil), p.failedBy[piece]...)
}

// BlockSuppliers returns, for each block of piece in order, the peer that
// supplied it (0 for a block not received), while the piece is in progress:
// after the last block arrived and before MarkHave or PieceFailed. Nil when
// the piece has no state.
func (p *Picker) BlockSuppliers(piece int) []PeerID {
	if piece < 0 || piece >= p.n || p.states[piece] == nil {
		return nil
	}
	st := p.states[piece]
	out := make([]PeerID, len(st.blocks))
	for i := range st.blocks {
		if st.blocks[i].received {
			out[i] = st.blocks[i].from
		}
	}
	return out
}

// Unhave undoes MarkHave: a piece we had turned out to be missing or corrupt
// on disk (changed behind our back), so it is wanted again.
func (p *Picker) Unhave(piece int) {
	if piece < 0 || piece >= p.n || !p.have.Has(piece) {
		return
	}
	p.have.Clear(piece)
	p.numHave--
	if p.prio[piece] > Skip {
		p.wanted++
		p.pending += p.freeOf(piece)
		for _, ps := range p.peers {
			if !ps.all && ps.bf.Has(piece) {
				ps.interesting++
			}
		}
		if p.prio[piece] > Normal {
			p.hotAdd(piece)
		}
	}
}
