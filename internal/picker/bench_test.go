package picker

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPick measures one receive-and-refill step of a 4096-piece torrent
// (256 KiB pieces) with 30 peers: the call made after nearly every block.
func BenchmarkPick(b *testing.B) {
	const n, peers, pipeline = 4096, 30, 16
	cfg := Config{NumPieces: n, PieceLength: 256 << 10, TotalLength: n * (256 << 10)}
	r := rand.New(rand.NewPCG(1, 2))
	var p *Picker
	queues := make([][]Block, peers)
	setup := func() {
		p = New(cfg, rand.New(rand.NewPCG(3, 4)))
		for id := range peers {
			queues[id] = queues[id][:0]
			if id%10 == 0 {
				p.PeerHaveAll(PeerID(id))
				continue
			}
			bf := bits(n)
			for q := range n {
				if r.IntN(5) != 0 {
					bf.Set(q)
				}
			}
			p.PeerBitfield(PeerID(id), bf)
		}
	}
	setup()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := i % peers
		if q := queues[id]; len(q) > 0 {
			blk := q[0]
			queues[id] = q[1:]
			_, cancels, done := p.BlockReceived(PeerID(id), blk)
			for _, c := range cancels {
				q := queues[c.Peer]
				for j := range q {
					if q[j] == c.Block {
						queues[c.Peer] = append(q[:j], q[j+1:]...)
						break
					}
				}
			}
			if done {
				p.MarkHave(blk.Piece)
			}
		}
		if p.Complete() {
			b.StopTimer()
			setup()
			b.StartTimer()
			continue
		}
		queues[id] = append(queues[id], p.Pick(PeerID(id), pipeline-len(queues[id]))...)
	}
}
