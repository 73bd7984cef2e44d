package picker

// newState starts tracking piece q with every block free.
func (p *Picker) newState(q int) *pieceState {
	var st *pieceState
	if k := len(p.pool); k > 0 {
		st = p.pool[k-1]
		p.pool = p.pool[:k-1]
	} else {
		st = &pieceState{}
	}
	nb := p.NumBlocks(q)
	if cap(st.blocks) >= nb {
		st.blocks = st.blocks[:nb]
		clear(st.blocks)
	} else {
		st.blocks = make([]blockState, nb)
	}
	st.piece, st.free, st.received, st.hint = q, nb, 0, 0
	st.suppliers = st.suppliers[:0]
	st.pos = len(p.active)
	p.active = append(p.active, q)
	p.states[q] = st
	return st
}

// dropState stops tracking a piece; its blocks must hold no owners. A piece
// without state counts as entirely free.
func (p *Picker) dropState(st *pieceState) {
	last := p.active[len(p.active)-1]
	p.active[st.pos] = last
	p.states[last].pos = st.pos
	p.active = p.active[:len(p.active)-1]
	p.states[st.piece] = nil
	p.pool = append(p.pool, st)
}

// maybeDrop drops a piece state that holds nothing: no received block and
// nothing in flight.
func (p *Picker) maybeDrop(st *pieceState) {
	if st.received == 0 && st.free == len(st.blocks) {
		p.dropState(st)
	}
}

// addFree changes a piece's free block count, keeping the endgame counter.
func (p *Picker) addFree(st *pieceState, d int) {
	st.free += d
	if p.wantedPiece(st.piece) {
		p.pending += d
	}
}

// assign puts block i of st in flight to id.
func (p *Picker) assign(id PeerID, ps *peerState, st *pieceState, i int) Block {
	bs := &st.blocks[i]
	if bs.n == 0 && !bs.received {
		p.addFree(st, -1)
	}
	bs.owners[bs.n] = id
	bs.n++
	b := p.BlockAt(st.piece, i)
	ps.seq++
	ps.inflight[b] = ps.seq
	return b
}

// takeFree appends free blocks of st for the peer until out holds max.
func (p *Picker) takeFree(id PeerID, ps *peerState, st *pieceState, max int, out []Block) []Block {
	ps.cur = st.piece
	for i := st.hint; i < len(st.blocks) && st.free > 0 && len(out) < max; i++ {
		bs := &st.blocks[i]
		if bs.n == 0 && !bs.received {
			out = append(out, p.assign(id, ps, st, i))
			st.hint = i + 1
		}
	}
	return out
}

// release removes id as an owner of block i; the block becomes free if
// nobody else has it in flight and it is not received.
func (p *Picker) release(id PeerID, st *pieceState, i int) bool {
	bs := &st.blocks[i]
	for k := 0; k < int(bs.n); k++ {
		if bs.owners[k] != id {
			continue
		}
		bs.n--
		bs.owners[k] = bs.owners[bs.n]
		if bs.n == 0 && !bs.received {
			p.addFree(st, 1)
			st.hint = min(st.hint, i)
		}
		return true
	}
	return false
}

// releaseAll forgets every owner of block i (their inflight entries too).
func (p *Picker) releaseAll(st *pieceState, i int) {
	bs := &st.blocks[i]
	if bs.n == 0 {
		return
	}
	b := p.BlockAt(st.piece, i)
	for _, o := range bs.owners[:bs.n] {
		if ps := p.peers[o]; ps != nil {
			delete(ps.inflight, b)
		}
	}
	bs.n = 0
	if !bs.received {
		p.addFree(st, 1)
		st.hint = min(st.hint, i)
	}
}

// Cancel withdraws the request of b from id (we cancelled it or the peer
// rejected it): the block is wanted again unless another peer has it in
// flight.
func (p *Picker) Cancel(id PeerID, b Block) {
	ps := p.peers[id]
	if ps == nil {
		return
	}
	if _, ok := ps.inflight[b]; !ok {
		return
	}
	delete(ps.inflight, b)
	i, _ := p.blockIndex(b)
	if st := p.states[b.Piece]; st != nil {
		p.release(id, st, i)
		p.maybeDrop(st)
	}
}

// BlockReceived records the data for b from id. dup is true if the block
// was already received, its piece is had, or b is not a block of this
// torrent: the caller ignores the data. cancels lists the other peers that
// have b in flight (endgame); they are no longer counted as requesting it
// and the caller should send them CANCEL. pieceDone is true when every
// block of the piece is now received and the caller should hash it.
func (p *Picker) BlockReceived(id PeerID, b Block) (dup bool, cancels []Request, pieceDone bool) {
	i, ok := p.blockIndex(b)
	if !ok {
		return true, nil, false
	}
	ps := p.peers[id]
	if ps != nil {
		delete(ps.inflight, b)
	}
	if p.have.Has(b.Piece) {
		return true, nil, false
	}
	st := p.states[b.Piece]
	if st == nil {
		st = p.newState(b.Piece)
	}
	bs := &st.blocks[i]
	if bs.received {
		p.release(id, st, i)
		return true, nil, false
	}
	if bs.n == 0 {
		p.addFree(st, -1) // unrequested (or cancelled) block arrived anyway
	}
	for _, o := range bs.owners[:bs.n] {
		if o == id {
			continue
		}
		cancels = append(cancels, Request{Peer: o, Block: b})
		if ops := p.peers[o]; ops != nil {
			delete(ops.inflight, b)
		}
	}
	bs.n = 0
	bs.received = true
	bs.from = id
	st.received++
	if !containsPeer(st.suppliers, id) {
		st.suppliers = append(st.suppliers, id)
	}
	return false, cancels, st.received == len(st.blocks)
}

func containsPeer(s []PeerID, id PeerID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

// PieceFailed records a failed hash check: every block of piece is wanted
// again and anything in flight for it is forgotten. The suppliers of the
// failed attempt stay available through BlockPeers.
func (p *Picker) PieceFailed(piece int) {
	if piece < 0 || piece >= p.n || p.have.Has(piece) {
		return
	}
	st := p.states[piece]
	if st == nil {
		return
	}
	if len(st.suppliers) > 0 {
		p.failedBy[piece] = append([]PeerID(nil), st.suppliers...)
	}
	for i := range st.blocks {
		p.releaseAll(st, i)
	}
	p.addFree(st, len(st.blocks)-st.free)
	p.dropState(st)
}
