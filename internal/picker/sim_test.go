package picker

import (
	"math/rand/v2"
	"testing"
)

// TestRandomSwarm drives the picker with random events, checking every
// internal counter after each step and that the download finishes.
func TestRandomSwarm(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 99))
		n := 1 + r.IntN(40)
		pl := int64(16384 * (1 + r.IntN(4)))
		cfg := Config{NumPieces: n, PieceLength: pl, TotalLength: int64(n-1)*pl + 1 + r.Int64N(pl), RandomFirst: r.IntN(4) - 1}
		p := newPicker(t, cfg, seed)
		held := map[PeerID]map[Block]bool{}
		addPeer := func(id PeerID) {
			held[id] = map[Block]bool{}
			if r.IntN(3) == 0 {
				p.PeerHaveAll(id)
				return
			}
			bf := bits(n)
			for q := range n {
				if r.IntN(2) == 0 {
					bf.Set(q)
				}
			}
			p.PeerBitfield(id, bf)
		}
		for id := PeerID(1); id <= 6; id++ {
			addPeer(id)
		}
		p.PeerHaveAll(0) // one seed that never leaves
		held[0] = map[Block]bool{}
		for step := 0; step < 20000 && !p.Complete(); step++ {
			id := PeerID(r.IntN(7))
			switch k := r.IntN(100); {
			case k < 40:
				for _, b := range p.Pick(id, 1+r.IntN(8)) {
					if held[id][b] || !p.ValidBlock(b) || p.Have(b.Piece) || p.Priority(b.Piece) == Skip {
						t.Fatalf("seed %d: bad pick %+v for %d", seed, b, id)
					}
					held[id][b] = true
				}
			case k < 85:
				for b := range held[id] {
					delete(held[id], b)
					_, cancels, done := p.BlockReceived(id, b)
					for _, c := range cancels {
						if !held[c.Peer][c.Block] {
							t.Fatalf("seed %d: cancel for block not held: %+v", seed, c)
						}
						delete(held[c.Peer], c.Block)
					}
					if done {
						if r.IntN(10) == 0 {
							p.PieceFailed(b.Piece)
						} else {
							p.MarkHave(b.Piece)
						}
					}
					break
				}
			case k < 88:
				for b := range held[id] {
					delete(held[id], b)
					p.Cancel(id, b)
					break
				}
			case k < 91:
				for _, b := range p.PeerChoked(id) {
					if !held[id][b] {
						t.Fatalf("seed %d: released block not held %+v", seed, b)
					}
				}
				held[id] = map[Block]bool{}
			case k < 93 && id != 0:
				p.RemovePeer(id)
				addPeer(id)
			case k < 96:
				p.SetPriority(r.IntN(n), Priority(r.IntN(4)))
			default:
				p.PeerHave(id, r.IntN(n))
			}
			for id, h := range held {
				if p.Inflight(id) != len(h) {
					t.Fatalf("seed %d step %d: peer %d inflight %d, test holds %d", seed, step, id, p.Inflight(id), len(h))
				}
			}
			checkInvariants(t, p)
		}
		if !p.Complete() {
			t.Fatalf("seed %d: not complete: have %d/%d pending %d", seed, p.NumHave(), n, p.pending)
		}
	}
}
