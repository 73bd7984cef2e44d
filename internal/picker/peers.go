package picker

import (
	"cmp"
	"slices"

	"github.com/shoal-p2p/shoal/internal/bitfield"
)

// AddPeer registers a peer that has nothing yet. Peer events for an unknown
// peer register it implicitly, so calling AddPeer is optional.
func (p *Picker) AddPeer(id PeerID) { p.peer(id) }

func (p *Picker) peer(id PeerID) *peerState {
	ps := p.peers[id]
	if ps == nil {
		ps = &peerState{inflight: make(map[Block]uint32), cur: -1}
		p.peers[id] = ps
	}
	return ps
}

// RemovePeer forgets a peer: its pieces no longer count for availability
// and its in-flight blocks are wanted again. Blocks it already supplied stay
// attributed to it (see BlockPeers).
func (p *Picker) RemovePeer(id PeerID) {
	ps := p.peers[id]
	if ps == nil {
		return
	}
	p.releasePeer(id, ps)
	p.dropAvail(ps)
	delete(p.peers, id)
}

// PeerHave records a HAVE message.
func (p *Picker) PeerHave(id PeerID, piece int) {
	if piece < 0 || piece >= p.n {
		return
	}
	ps := p.peer(id)
	if ps.all || ps.bf.Has(piece) {
		return
	}
	if ps.bf.Len() != p.n {
		ps.bf = bitfield.New(p.n)
	}
	ps.bf.Set(piece)
	p.avail[piece]++
	if p.wantedPiece(piece) {
		ps.interesting++
	}
}

// PeerBitfield records a BITFIELD message, replacing what was known about
// the peer. Bits beyond the piece count are ignored.
func (p *Picker) PeerBitfield(id PeerID, bf bitfield.Bitfield) {
	ps := p.peer(id)
	p.dropAvail(ps)
	if p.n > 0 && bf.Len() >= p.n && bf.Count() == bf.Len() {
		ps.all = true
		p.seeds++
		return
	}
	ps.bf = bitfield.New(p.n)
	for q := range min(p.n, bf.Len()) {
		if bf.Has(q) {
			ps.bf.Set(q)
			p.avail[q]++
			if p.wantedPiece(q) {
				ps.interesting++
			}
		}
	}
}

// PeerHaveAll records a HAVE ALL message (BEP 6) or an equivalent.
func (p *Picker) PeerHaveAll(id PeerID) {
	ps := p.peer(id)
	p.dropAvail(ps)
	ps.all = true
	p.seeds++
}

// PeerHaveNone records a HAVE NONE message (BEP 6).
func (p *Picker) PeerHaveNone(id PeerID) { p.dropAvail(p.peer(id)) }

// dropAvail removes what the peer has from availability.
func (p *Picker) dropAvail(ps *peerState) {
	if ps.all {
		p.seeds--
		ps.all = false
	}
	if ps.bf.Len() == p.n {
		for q := range p.n {
			if ps.bf.Has(q) {
				p.avail[q]--
			}
		}
	}
	ps.bf = bitfield.Bitfield{}
	ps.interesting = 0
}

// Interesting reports whether the peer has a piece we want and lack.
func (p *Picker) Interesting(id PeerID) bool {
	ps := p.peers[id]
	switch {
	case ps == nil:
		return false
	case ps.all:
		return p.wanted > 0
	}
	return ps.interesting > 0
}

// Inflight returns how many blocks are in flight to the peer.
func (p *Picker) Inflight(id PeerID) int {
	if ps := p.peers[id]; ps != nil {
		return len(ps.inflight)
	}
	return 0
}

// PeerChoked releases every block in flight to the peer and returns them,
// ordered by piece and offset.
func (p *Picker) PeerChoked(id PeerID) []Block {
	ps := p.peers[id]
	if ps == nil {
		return nil
	}
	return p.releasePeer(id, ps)
}

func (p *Picker) releasePeer(id PeerID, ps *peerState) []Block {
	if len(ps.inflight) == 0 {
		return nil
	}
	out := make([]Block, 0, len(ps.inflight))
	for b := range ps.inflight {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Block) int {
		return cmp.Or(cmp.Compare(a.Piece, b.Piece), cmp.Compare(a.Begin, b.Begin))
	})
	for _, b := range out {
		p.Cancel(id, b)
	}
	return out
}
