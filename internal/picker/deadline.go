package picker

import "time"

// Streaming deadlines.
//
// A piece with a deadline (SetDeadline) joins the hot set with at least
// High priority; among hot pieces of equal priority the nearest deadline
// goes first (pieces with a deadline before those without, then by index).
// Pieces without a deadline keep the usual order, so a streaming peer still
// picks rarest first outside its window and keeps giving the swarm useful
// pieces.
//
// Time is data here: the caller passes now (PickAt or SetNow) and each
// peer's measured download rate (SetPeerRate); the picker reads no clock.
//
// Fastest peers first: a peer whose rate is known and at most half of the
// fastest peer's is not given a new deadline piece it cannot deliver in time
// (its queued blocks plus the piece, at its rate, would end after the
// deadline); such pieces wait for a faster peer. With no rates known every
// peer qualifies.
//
// Racing: a block of a deadline piece still in flight when its deadline is
// within DeadlineMargin of now is also requested from a second peer (at most
// MaxDuplicates in all); BlockReceived reports the loser for CANCEL, as in
// endgame.

// DeadlineMargin is how close to its deadline an in-flight block must be
// before it is raced on a second peer.
const DeadlineMargin = 2 * time.Second

// deadlineState holds the streaming deadlines. Owned by the caller's
// goroutine like the rest of the Picker; maps are created lazily.
type deadlineState struct {
	at   map[int]time.Time
	rate map[PeerID]float64 // bytes/s, measured by the caller
	now  time.Time
	skip bool // set during one pickNew scan: the peer is slow, leave deadline pieces
}

// skipDeadline reports whether q is a deadline piece the current (slow)
// peer must leave to a faster one.
func (p *Picker) skipDeadline(q int) bool {
	if !p.dl.skip {
		return false
	}
	_, ok := p.dl.at[q]
	return ok
}

// SetDeadline gives piece a deadline (a zero at clears it). A deadline does
// not un-skip a Skip piece; had pieces ignore deadlines.
func (p *Picker) SetDeadline(piece int, at time.Time) {
	if piece < 0 || piece >= p.n {
		return
	}
	if at.IsZero() {
		p.clearDeadline(piece)
		return
	}
	if p.have.Has(piece) {
		return
	}
	if p.dl.at == nil {
		p.dl.at = make(map[int]time.Time)
	}
	p.dl.at[piece] = at
	if p.prio[piece] > Skip {
		p.hotAdd(piece)
	}
}

func (p *Picker) clearDeadline(piece int) {
	if _, ok := p.dl.at[piece]; !ok {
		return
	}
	delete(p.dl.at, piece)
	if p.prio[piece] <= Normal {
		p.hotRemove(piece)
	}
}

// ClearDeadlines removes every deadline.
func (p *Picker) ClearDeadlines() {
	for q := range p.dl.at {
		p.clearDeadline(q)
	}
}

// Deadline returns the deadline of piece, if it has one.
func (p *Picker) Deadline(piece int) (time.Time, bool) {
	at, ok := p.dl.at[piece]
	return at, ok
}

// NumDeadlines returns how many pieces have a deadline.
func (p *Picker) NumDeadlines() int { return len(p.dl.at) }

// SetNow sets the time deadlines are judged against (PickAt does it too).
func (p *Picker) SetNow(now time.Time) { p.dl.now = now }

// SetPeerRate records a peer's measured download rate in bytes/s (0 or
// less: unknown).
func (p *Picker) SetPeerRate(id PeerID, bytesPerSec float64) {
	if bytesPerSec <= 0 {
		delete(p.dl.rate, id)
		return
	}
	if p.dl.rate == nil {
		p.dl.rate = make(map[PeerID]float64)
	}
	p.dl.rate[id] = bytesPerSec
}

// PickAt is Pick with the current time, for deadline decisions.
func (p *Picker) PickAt(id PeerID, max int, now time.Time) []Block {
	p.dl.now = now
	return p.Pick(id, max)
}

// effPrio is the priority a piece is picked with: deadline pieces count
// at least High.
func (p *Picker) effPrio(q int) Priority {
	pr := p.prio[q]
	if pr > Skip && pr < High {
		if _, ok := p.dl.at[q]; ok {
			return High
		}
	}
	return pr
}

// hotBefore orders hot pieces: effective priority, then nearest deadline
// (a deadline before none), then index.
func (p *Picker) hotBefore(a, b int) bool {
	if pa, pb := p.effPrio(a), p.effPrio(b); pa != pb {
		return pa > pb
	}
	da, oka := p.dl.at[a]
	db, okb := p.dl.at[b]
	switch {
	case oka && okb && !da.Equal(db):
		return da.Before(db)
	case oka != okb:
		return oka
	}
	return a < b
}

// tooSlowFor reports whether the peer should leave deadline piece q to a
// faster peer (see the package comment above).
func (p *Picker) tooSlowFor(id PeerID, ps *peerState, q int) bool {
	at, ok := p.dl.at[q]
	if !ok || len(p.dl.rate) < 2 {
		return false
	}
	r, ok := p.dl.rate[id]
	if !ok || !p.slowPeer(id) {
		return false
	}
	queued := float64(len(ps.inflight)*p.blockSize + p.PieceSize(q))
	eta := p.dl.now.Add(time.Duration(queued / r * float64(time.Second)))
	return eta.After(at)
}

// raceDeadlines appends blocks of deadline pieces due within DeadlineMargin
// that are in flight to another peer, nearest deadline first.
func (p *Picker) raceDeadlines(id PeerID, ps *peerState, max int, out []Block) []Block {
	if len(p.dl.at) == 0 || len(out) >= max {
		return out
	}
	var due []int
	limit := p.dl.now.Add(DeadlineMargin)
	for q, at := range p.dl.at {
		if at.Before(limit) && p.states[q] != nil && p.wantedPiece(q) && ps.has(q) {
			due = append(due, q)
		}
	}
	if len(due) == 0 {
		return out
	}
	// insertion sort by deadline then index: the set is small
	for i := 1; i < len(due); i++ {
		for j := i; j > 0 && p.hotBefore(due[j], due[j-1]); j-- {
			due[j], due[j-1] = due[j-1], due[j]
		}
	}
	return p.endgame(id, ps, due, max, out)
}

// slowPeer reports whether the peer's known rate is at most half the
// fastest known rate among current peers.
func (p *Picker) slowPeer(id PeerID) bool {
	r, ok := p.dl.rate[id]
	if !ok || len(p.dl.rate) < 2 {
		return false
	}
	for pid, pr := range p.dl.rate {
		if pr >= r*2 && p.peers[pid] != nil {
			return true
		}
	}
	return false
}

// InflightWithoutDeadline lists the blocks in flight to the peer whose
// pieces have no deadline: the requests a streaming reader may preempt after
// a seek, so the pieces it waits for are not queued behind them.
func (p *Picker) InflightWithoutDeadline(id PeerID) []Block {
	ps := p.peers[id]
	if ps == nil {
		return nil
	}
	var out []Block
	for b := range ps.inflight {
		if _, ok := p.dl.at[b.Piece]; !ok {
			out = append(out, b)
		}
	}
	return out
}
