package picker

import (
	"math/rand/v2"
	"testing"

	"github.com/shoal-p2p/shoal/internal/bitfield"
)

func newPicker(t testing.TB, cfg Config, seed uint64) *Picker {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg, rand.New(rand.NewPCG(seed, 7)))
}

// oneBlockPieces is n pieces of one block each.
func oneBlockPieces(n int) Config {
	return Config{NumPieces: n, PieceLength: 16384, TotalLength: int64(n) * 16384, RandomFirst: -1}
}

func bits(n int, set ...int) bitfield.Bitfield {
	b := bitfield.New(n)
	for _, i := range set {
		b.Set(i)
	}
	return b
}

// checkInvariants recomputes every counter from scratch and compares.
func checkInvariants(t testing.TB, p *Picker) {
	t.Helper()
	pending, wanted := 0, 0
	for q := range p.n {
		if p.wantedPiece(q) {
			wanted++
			pending += p.freeOf(q)
		}
		if p.have.Has(q) && p.states[q] != nil {
			t.Fatalf("had piece %d still has state", q)
		}
	}
	if pending != p.pending || wanted != p.wanted {
		t.Fatalf("pending %d (want %d) wanted %d (want %d)", p.pending, pending, p.wanted, wanted)
	}
	for i, q := range p.active {
		st := p.states[q]
		if st == nil || st.pos != i || st.piece != q {
			t.Fatalf("active list broken at %d (piece %d)", i, q)
		}
		free, recv := 0, 0
		for bi, bs := range st.blocks {
			if bs.received {
				recv++
				if bs.n != 0 {
					t.Fatalf("received block %d/%d still has owners", q, bi)
				}
			} else if bs.n == 0 {
				free++
				if bi < st.hint {
					t.Fatalf("free block %d/%d before hint %d", q, bi, st.hint)
				}
			}
			for _, o := range bs.owners[:bs.n] {
				if _, ok := p.peers[o].inflight[p.BlockAt(q, bi)]; !ok {
					t.Fatalf("owner %d of %d/%d lacks inflight entry", o, q, bi)
				}
			}
		}
		if free != st.free || recv != st.received {
			t.Fatalf("piece %d free %d/%d received %d/%d", q, st.free, free, st.received, recv)
		}
	}
	avail := make([]int32, p.n)
	seeds := 0
	for id, ps := range p.peers {
		interesting := 0
		if ps.all {
			seeds++
		} else {
			for q := range p.n {
				if ps.bf.Has(q) {
					avail[q]++
					if p.wantedPiece(q) {
						interesting++
					}
				}
			}
			if interesting != ps.interesting {
				t.Fatalf("peer %d interesting %d want %d", id, ps.interesting, interesting)
			}
		}
		for b := range ps.inflight {
			i, ok := p.blockIndex(b)
			st := p.states[b.Piece]
			if !ok || st == nil || !containsPeer(st.blocks[i].owners[:st.blocks[i].n], id) {
				t.Fatalf("peer %d inflight %+v not owned", id, b)
			}
		}
	}
	if seeds != p.seeds {
		t.Fatalf("seeds %d want %d", p.seeds, seeds)
	}
	for q := range p.n {
		if avail[q] != p.avail[q] {
			t.Fatalf("avail[%d] = %d want %d", q, p.avail[q], avail[q])
		}
	}
	for i, q := range p.hot {
		if p.hotPos[q] != int32(i) || p.effPrio(q) <= Normal || p.have.Has(q) {
			t.Fatalf("hot list broken at %d", i)
		}
	}
}

// receiveAll delivers every block and marks completed pieces had.
func receiveAll(t testing.TB, p *Picker, id PeerID, bs []Block) {
	t.Helper()
	for _, b := range bs {
		dup, _, done := p.BlockReceived(id, b)
		if dup {
			t.Fatalf("unexpected dup %+v", b)
		}
		if done {
			p.MarkHave(b.Piece)
		}
	}
}
