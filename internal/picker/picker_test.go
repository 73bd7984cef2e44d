package picker

import (
	"slices"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{NumPieces: 3, PieceLength: 10, TotalLength: 25}, true},
		{Config{NumPieces: 3, PieceLength: 10, TotalLength: 30}, true},
		{Config{NumPieces: 0, PieceLength: 10, TotalLength: 0}, true},
		{Config{NumPieces: 3, PieceLength: 10, TotalLength: 20}, false},
		{Config{NumPieces: 3, PieceLength: 10, TotalLength: 31}, false},
		{Config{NumPieces: 3, PieceLength: 0, TotalLength: 30}, false},
		{Config{NumPieces: -1, PieceLength: 10, TotalLength: 30}, false},
		{Config{NumPieces: 1, PieceLength: 10, TotalLength: 0}, false},
		{Config{NumPieces: 2, PieceLength: 10, TotalLength: 15, BlockSize: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: err=%v want ok=%v", tc.cfg, err, tc.ok)
		}
		New(tc.cfg, nil).Pick(1, 10) // never panics, even on a bad config
	}
}

func TestShortLastPieceGeometry(t *testing.T) {
	cfg := Config{NumPieces: 3, PieceLength: 40000, TotalLength: 2*40000 + 5000, RandomFirst: -1}
	p := newPicker(t, cfg, 1)
	if p.PieceSize(0) != 40000 || p.PieceSize(2) != 5000 || p.PieceSize(3) != 0 {
		t.Fatalf("piece sizes %d %d %d", p.PieceSize(0), p.PieceSize(2), p.PieceSize(3))
	}
	if p.NumBlocks(0) != 3 || p.NumBlocks(2) != 1 {
		t.Fatalf("blocks %d %d", p.NumBlocks(0), p.NumBlocks(2))
	}
	if b := p.BlockAt(0, 2); b.Length != 40000-2*16384 {
		t.Fatalf("short last block of piece: %+v", b)
	}
	p.PeerHaveAll(1)
	got := p.Pick(1, 100)
	if len(got) != 7 {
		t.Fatalf("picked %d blocks, want 7: %v", len(got), got)
	}
	total := 0
	seen := map[Block]bool{}
	for _, b := range got {
		end := int64(b.Piece)*cfg.PieceLength + int64(b.Begin+b.Length)
		if b.Length <= 0 || b.Length > 16384 || end > cfg.TotalLength || b.Begin+b.Length > p.PieceSize(b.Piece) || seen[b] {
			t.Fatalf("bad block %+v", b)
		}
		seen[b] = true
		total += b.Length
	}
	if int64(total) != cfg.TotalLength {
		t.Fatalf("blocks cover %d bytes, want %d", total, cfg.TotalLength)
	}
	// Wrong geometry is rejected as a dup, never stored.
	for _, b := range []Block{{2, 0, 16384}, {0, 100, 16384}, {3, 0, 1}, {0, 32768, 16384}} {
		if dup, _, _ := p.BlockReceived(1, b); !dup || p.ValidBlock(b) {
			t.Errorf("invalid block %+v accepted", b)
		}
	}
	receiveAll(t, p, 1, got)
	if !p.Complete() || p.NumHave() != 3 {
		t.Fatalf("not complete: have %d", p.NumHave())
	}
	checkInvariants(t, p)
}

func TestRarestFirst(t *testing.T) {
	const n = 10
	p := newPicker(t, oneBlockPieces(n), 3)
	// Peer k has pieces k..n-1, so piece q is held by q+1 of them.
	for k := range n {
		var set []int
		for q := k; q < n; q++ {
			set = append(set, q)
		}
		p.PeerBitfield(PeerID(100+k), bits(n, set...))
	}
	p.PeerHaveAll(1)
	var order []int
	for range n {
		b := p.Pick(1, 1)
		if len(b) != 1 {
			t.Fatalf("no pick after %v", order)
		}
		order = append(order, b[0].Piece)
		checkInvariants(t, p)
	}
	if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("rarest-first order %v", order)
	}
}

func TestRarestOnlyPiecesPeerHas(t *testing.T) {
	p := newPicker(t, oneBlockPieces(10), 3)
	p.PeerBitfield(1, bits(10, 5, 7))
	p.PeerBitfield(2, bits(10, 7))
	got := p.Pick(1, 10)
	if len(got) != 2 || got[0].Piece != 5 || got[1].Piece != 7 {
		t.Fatalf("got %v, want rarer 5 then 7 only", got)
	}
}

func TestRarestTiesRandom(t *testing.T) {
	firsts := map[int]bool{}
	for seed := range uint64(30) {
		p := newPicker(t, oneBlockPieces(64), seed)
		p.PeerHaveAll(1)
		firsts[p.Pick(1, 1)[0].Piece] = true
	}
	if len(firsts) < 10 {
		t.Fatalf("equal-availability ties not broken randomly: only %d distinct first pieces", len(firsts))
	}
}

func TestRandomFirstPhase(t *testing.T) {
	const n = 100
	cfg := oneBlockPieces(n)
	cfg.RandomFirst = 4
	firsts := map[int]bool{}
	for seed := range uint64(40) {
		p := newPicker(t, cfg, seed)
		// Piece 0 is the single rarest piece: every other piece has one more holder.
		var others []int
		for q := 1; q < n; q++ {
			others = append(others, q)
		}
		p.PeerBitfield(50, bits(n, others...))
		p.PeerHaveAll(1)
		var got []Block
		for range 4 {
			b := p.Pick(1, 1)
			got = append(got, b...)
			firsts[b[0].Piece] = true
		}
		receiveAll(t, p, 1, got)
		if p.NumHave() != 4 {
			t.Fatalf("have %d", p.NumHave())
		}
		// Random phase over: rarest first takes over.
		if !p.Have(0) {
			if b := p.Pick(1, 1); b[0].Piece != 0 {
				t.Fatalf("seed %d: after random phase picked %d, want rarest 0", seed, b[0].Piece)
			}
		}
		checkInvariants(t, p)
	}
	if len(firsts) < 30 {
		t.Fatalf("random-first phase not random: %d distinct pieces", len(firsts))
	}
}

func TestRandomFirstOnlyPeerPieces(t *testing.T) {
	cfg := oneBlockPieces(50)
	cfg.RandomFirst = 10
	for seed := range uint64(20) {
		p := newPicker(t, cfg, seed)
		p.PeerBitfield(1, bits(50, 3, 17, 42))
		for _, b := range p.Pick(1, 10) {
			if b.Piece != 3 && b.Piece != 17 && b.Piece != 42 {
				t.Fatalf("picked piece %d the peer lacks", b.Piece)
			}
		}
	}
}

func fourBlockPieces(n int) Config {
	return Config{NumPieces: n, PieceLength: 4 * 16384, TotalLength: int64(n) * 4 * 16384, RandomFirst: -1}
}

func TestPartialPiecePreference(t *testing.T) {
	p := newPicker(t, fourBlockPieces(20), 5)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	a := p.Pick(1, 2)
	piece := a[0].Piece
	if a[1].Piece != piece || a[0].Begin != 0 || a[1].Begin != 16384 {
		t.Fatalf("first pick %v", a)
	}
	// The peer keeps working on its piece.
	if b := p.Pick(1, 1); b[0] != (Block{piece, 2 * 16384, 16384}) {
		t.Fatalf("peer left its piece: %v", b)
	}
	// Another peer finishes the partial piece before starting a new one.
	b := p.Pick(2, 3)
	if b[0] != (Block{piece, 3 * 16384, 16384}) || b[1].Piece == piece || b[2].Piece != b[1].Piece {
		t.Fatalf("second peer: %v", b)
	}
	// Peer 1 now prefers the partial piece of peer 2 to a fresh one.
	if c := p.Pick(1, 1); c[0].Piece != b[1].Piece {
		t.Fatalf("did not continue partial piece %d: %v", b[1].Piece, c)
	}
	checkInvariants(t, p)
}

func TestOwnPiecePreferred(t *testing.T) {
	p := newPicker(t, fourBlockPieces(20), 5)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	// Peer 1 works on piece 3 (3 blocks free), peer 2 on piece 9 (2 free).
	p.PickFast(1, []int{3}, 1)
	p.PickFast(2, []int{9}, 2)
	for range 2 {
		if a, b := p.Pick(1, 1)[0].Piece, p.Pick(2, 1)[0].Piece; a != 3 || b != 9 {
			t.Fatalf("peers left their pieces: %d %d", a, b)
		}
	}
	// Piece 9 is fully requested: peer 2 now helps with piece 3.
	if b := p.Pick(2, 1)[0].Piece; b != 3 {
		t.Fatalf("peer 2 started piece %d instead of joining partial 3", b)
	}
	checkInvariants(t, p)
}

func TestEndgameAndCancels(t *testing.T) {
	cfg := Config{NumPieces: 2, PieceLength: 2 * 16384, TotalLength: 4 * 16384, RandomFirst: -1}
	p := newPicker(t, cfg, 1)
	for id := PeerID(1); id <= 3; id++ {
		p.PeerHaveAll(id)
	}
	a := p.Pick(1, 3)
	if len(a) != 3 || p.InEndgame() {
		t.Fatalf("endgame too early: %v", a)
	}
	a = append(a, p.Pick(1, 1)...)
	if !p.InEndgame() {
		t.Fatal("all blocks in flight but not endgame")
	}
	if again := p.Pick(1, 10); len(again) != 0 {
		t.Fatalf("same block twice to one peer: %v", again)
	}
	b := p.Pick(2, 10)
	if !slices.Equal(sorted(a), sorted(b)) {
		t.Fatalf("endgame duplicates %v want %v", b, a)
	}
	if c := p.Pick(3, 10); len(c) != 0 {
		t.Fatalf("more than %d duplicates: %v", MaxDuplicates, c)
	}
	checkInvariants(t, p)
	blk := a[0]
	dup, cancels, done := p.BlockReceived(2, blk)
	if dup || done || len(cancels) != 1 || cancels[0] != (Request{1, blk}) {
		t.Fatalf("BlockReceived: dup=%v cancels=%v done=%v", dup, cancels, done)
	}
	if p.Inflight(1) != 3 || p.Inflight(2) != 3 {
		t.Fatalf("inflight %d %d", p.Inflight(1), p.Inflight(2))
	}
	if dup, cancels, _ := p.BlockReceived(1, blk); !dup || cancels != nil {
		t.Fatal("late copy not reported as dup")
	}
	// A duplicate slot freed by the cancel is not refilled for a received block.
	if c := p.Pick(3, 10); len(c) != 0 {
		t.Fatalf("peer 3 got %v", c)
	}
	// Peer 1 chokes us: its blocks stay in flight to peer 2, so peer 3 may duplicate them.
	p.PeerChoked(1)
	if !p.InEndgame() {
		t.Fatal("left endgame although peer 2 still has everything in flight")
	}
	if c := p.Pick(3, 10); len(c) != 3 {
		t.Fatalf("peer 3 got %v", c)
	}
	checkInvariants(t, p)
	doneCount := 0
	for _, b := range p.Pick(2, 10) {
		t.Fatalf("peer 2 got block twice: %v", b)
	}
	for _, b := range a[1:] {
		_, cancels, done := p.BlockReceived(3, b)
		if len(cancels) != 1 || cancels[0].Peer != 2 {
			t.Fatalf("cancels %v", cancels)
		}
		if done {
			doneCount++
			p.MarkHave(b.Piece)
		}
	}
	if doneCount != 2 || !p.Complete() || p.InEndgame() || p.Inflight(2) != 0 || p.Inflight(3) != 0 {
		t.Fatalf("done %d complete %v", doneCount, p.Complete())
	}
	checkInvariants(t, p)
}

func sorted(b []Block) []Block {
	b = slices.Clone(b)
	slices.SortFunc(b, func(x, y Block) int { return (x.Piece*1e9 + x.Begin) - (y.Piece*1e9 + y.Begin) })
	return b
}

func TestPeerChokedRelease(t *testing.T) {
	p := newPicker(t, fourBlockPieces(8), 2)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	a := p.Pick(1, 3)
	rel := p.PeerChoked(1)
	if !slices.Equal(rel, a) || p.Inflight(1) != 0 {
		t.Fatalf("released %v want %v", rel, a)
	}
	checkInvariants(t, p)
	if b := p.Pick(2, 3); !slices.Equal(b, a) {
		t.Fatalf("released blocks not re-picked first: %v want %v", b, a)
	}
}

func TestRemovePeerRelease(t *testing.T) {
	p := newPicker(t, fourBlockPieces(8), 2)
	p.PeerBitfield(1, bits(8, 0, 1, 2))
	p.PeerBitfield(2, bits(8, 1))
	a := p.Pick(1, 2)
	if a[0].Piece != 0 && a[0].Piece != 2 {
		t.Fatalf("not rarest: %v", a)
	}
	p.BlockReceived(1, a[0])
	p.RemovePeer(1)
	if p.Availability(0) != 0 || p.Availability(1) != 1 || p.Interesting(1) || p.Inflight(1) != 0 {
		t.Fatal("peer state not dropped")
	}
	checkInvariants(t, p)
	p.PeerHaveAll(3)
	b := p.Pick(3, 1)
	if b[0] != a[1] {
		t.Fatalf("released block not re-picked: %v want %v", b, a[1])
	}
	if peers := p.BlockPeers(a[0].Piece); !slices.Equal(peers, []PeerID{1}) {
		t.Fatalf("supplier forgotten: %v", peers)
	}
}

func TestPieceFailedRepick(t *testing.T) {
	p := newPicker(t, fourBlockPieces(4), 2)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	a := p.Pick(1, 2)
	b := p.Pick(2, 2) // finishes the same piece
	var done bool
	for _, x := range a {
		_, _, done = p.BlockReceived(1, x)
	}
	for _, x := range b {
		_, _, done = p.BlockReceived(2, x)
	}
	if !done {
		t.Fatal("piece not done")
	}
	piece := a[0].Piece
	if peers := p.BlockPeers(piece); !slices.Equal(peers, []PeerID{1, 2}) {
		t.Fatalf("BlockPeers %v", peers)
	}
	// Who sent each block, in block order, for blaming the right one.
	want := make([]PeerID, 4)
	for _, x := range a {
		want[x.Begin/DefaultBlockSize] = 1
	}
	for _, x := range b {
		want[x.Begin/DefaultBlockSize] = 2
	}
	if got := p.BlockSuppliers(piece); !slices.Equal(got, want) {
		t.Fatalf("BlockSuppliers %v, want %v", got, want)
	}
	p.PieceFailed(piece)
	if got := p.BlockSuppliers(piece); got != nil {
		t.Fatalf("BlockSuppliers after PieceFailed: %v, want nil (the attempt is dropped)", got)
	}
	if peers := p.BlockPeers(piece); !slices.Equal(peers, []PeerID{1, 2}) {
		t.Fatalf("BlockPeers after failure %v", peers)
	}
	checkInvariants(t, p)
	// Make the failed piece the rarest so a fresh pick returns to it.
	for q := range 4 {
		if q != piece {
			p.PeerHave(9, q)
		}
	}
	c := p.Pick(2, 4)
	if len(c) != 4 || c[0].Piece != piece {
		t.Fatalf("failed piece not re-picked: %v", c)
	}
	receiveAll(t, p, 2, c)
	if !p.Have(piece) || p.Pick(1, 16)[0].Piece == piece {
		t.Fatal("verified piece still picked")
	}
	checkInvariants(t, p)
}

func TestSkipPriority(t *testing.T) {
	p := newPicker(t, oneBlockPieces(6), 4)
	for _, q := range []int{0, 2, 4} {
		p.SetPriority(q, Skip)
	}
	p.PeerBitfield(1, bits(6, 0, 2, 4))
	if p.Interesting(1) || len(p.Pick(1, 10)) != 0 {
		t.Fatal("peer with only skipped pieces is interesting")
	}
	p.PeerHaveAll(2)
	got := p.Pick(2, 10)
	if len(got) != 3 {
		t.Fatalf("picked %v", got)
	}
	for _, b := range got {
		if b.Piece%2 == 0 {
			t.Fatalf("skipped piece %d picked", b.Piece)
		}
	}
	if p.InEndgame() == false {
		t.Fatal("skipped pieces count for endgame")
	}
	receiveAll(t, p, 2, got)
	if !p.Complete() {
		t.Fatal("Complete counts skipped pieces")
	}
	p.SetPriority(4, Normal)
	if p.Complete() || !p.Interesting(1) {
		t.Fatal("re-enabled piece not wanted")
	}
	checkInvariants(t, p)
}

func TestHighPriorityFirst(t *testing.T) {
	p := newPicker(t, fourBlockPieces(10), 4)
	p.PeerHaveAll(1)
	p.PeerBitfield(2, bits(10, 0, 1, 2, 3, 4, 5, 6, 7, 8)) // piece 9 is rarest
	first := p.Pick(1, 1)[0].Piece
	p.SetPriority(6, High)
	p.SetPriority(5, High)
	p.SetPriority(8, Urgent)
	var order []int
	for _, b := range p.Pick(1, 13) {
		if len(order) == 0 || order[len(order)-1] != b.Piece {
			order = append(order, b.Piece)
		}
	}
	// Urgent, then High by index, then back to the started Normal piece.
	if !slices.Equal(order, []int{8, 5, 6, first}) {
		t.Fatalf("priority order %v (first %d)", order, first)
	}
	checkInvariants(t, p)
}

func TestInteresting(t *testing.T) {
	p := newPicker(t, oneBlockPieces(5), 1)
	if p.Interesting(7) {
		t.Fatal("unknown peer interesting")
	}
	p.AddPeer(1)
	if p.Interesting(1) {
		t.Fatal("empty peer interesting")
	}
	p.MarkHave(2)
	p.PeerHave(1, 2)
	if p.Interesting(1) {
		t.Fatal("peer with only pieces we have is interesting")
	}
	p.PeerHave(1, 3)
	if !p.Interesting(1) {
		t.Fatal("peer with a wanted piece not interesting")
	}
	p.MarkHave(3)
	if p.Interesting(1) {
		t.Fatal("still interesting after we got the piece")
	}
	p.PeerHaveAll(2)
	if !p.Interesting(2) {
		t.Fatal("seed not interesting")
	}
	for _, q := range []int{0, 1, 4} {
		p.MarkHave(q)
	}
	if p.Interesting(2) || !p.Complete() {
		t.Fatal("seed interesting after completion")
	}
	p.PeerHaveNone(2)
	checkInvariants(t, p)
}

func TestCancelMakesBlockWantedAgain(t *testing.T) {
	p := newPicker(t, fourBlockPieces(2), 1)
	p.PeerHaveAll(1)
	a := p.Pick(1, 2)
	p.Cancel(1, a[1])
	p.Cancel(1, a[1]) // twice is harmless
	checkInvariants(t, p)
	if b := p.Pick(1, 1); b[0] != a[1] {
		t.Fatalf("cancelled block not re-picked: %v", b)
	}
}

func TestPickFast(t *testing.T) {
	p := newPicker(t, fourBlockPieces(10), 1)
	p.PeerHaveAll(1)
	got := p.PickFast(1, []int{7, 3, 99, -1}, 6)
	if len(got) != 6 || got[0].Piece != 7 || got[4].Piece != 3 {
		t.Fatalf("PickFast %v", got)
	}
	p.MarkHave(3)
	p.MarkHave(7)
	if got := p.PickFast(1, []int{7, 3}, 6); len(got) != 0 {
		t.Fatalf("PickFast on had pieces: %v", got)
	}
	checkInvariants(t, p)
}

func TestUnhave(t *testing.T) {
	p := newPicker(t, Config{NumPieces: 4, PieceLength: 32 << 10, TotalLength: 4 * 32 << 10, RandomFirst: -1}, 1)
	for i := 0; i < 4; i++ {
		p.MarkHave(i)
	}
	p.PeerHaveAll(7)
	if !p.Complete() || p.Interesting(7) {
		t.Fatal("should be complete and not interested")
	}
	p.Unhave(2)
	if p.Complete() || p.Have(2) || p.NumHave() != 3 || !p.Interesting(7) {
		t.Fatalf("after Unhave: complete=%v have2=%v n=%d interesting=%v", p.Complete(), p.Have(2), p.NumHave(), p.Interesting(7))
	}
	blocks := p.Pick(7, 10)
	if len(blocks) != 2 || blocks[0].Piece != 2 {
		t.Fatalf("picked %v, want the two blocks of piece 2", blocks)
	}
}

// A seed does not spend its upload finishing a piece that other peers hold
// while a piece only it has is still missing from the swarm; a piece that
// is just as rare is finished first.
func TestSeedInjectsRarePieceBeforePartial(t *testing.T) {
	cfg := fourBlockPieces(6)
	cfg.RandomFirst = -1
	p := newPicker(t, cfg, 5)
	const seed, peerA, peerB = PeerID(1), PeerID(2), PeerID(3)
	p.PeerHaveAll(seed)
	p.PeerBitfield(peerA, bits(6, 0, 1, 2, 3, 4)) // piece 5: only the seed
	p.PeerBitfield(peerB, bits(6, 0, 1, 2, 3))
	// Peer A starts piece 4 (held by A alone among leechers) and is choked.
	a := p.PickFast(peerA, []int{4}, 1)
	if len(a) != 1 || a[0].Piece != 4 {
		t.Fatalf("peer A pick %v", a)
	}
	if b := p.Pick(seed, 1); len(b) != 1 || b[0].Piece != 5 {
		t.Fatalf("seed asked for %v, want the piece only it has (5)", b)
	}
	checkInvariants(t, p)

	// When every new piece is more common than the partial one, the seed
	// helps finish the partial piece.
	q := newPicker(t, cfg, 5)
	q.PeerHaveAll(seed)
	q.PeerBitfield(peerA, bits(6, 0, 1, 2, 3, 4, 5))
	q.PeerBitfield(peerB, bits(6, 0, 1, 2, 3, 5))
	q.PickFast(peerA, []int{4}, 1)
	if b := q.Pick(seed, 1); len(b) != 1 || b[0].Piece != 4 {
		t.Fatalf("seed asked for %v, want the partial piece 4", b)
	}
	checkInvariants(t, q)
}

// With rates known, endgame duplicates only the blocks a faster peer can
// deliver before their owner: the end of the owner's queue, latest first.
func TestEndgameDuplicatesOnlyLateBlocks(t *testing.T) {
	const bs = 16384
	cfg := Config{NumPieces: 1, PieceLength: 8 * bs, TotalLength: 8 * bs, RandomFirst: -1}
	setup := func(ownerRate, rate float64) (*Picker, []Block) {
		p := newPicker(t, cfg, 1)
		p.PeerHaveAll(1)
		p.PeerHaveAll(2)
		a := p.Pick(1, 8) // the owner's queue, served in this order
		if len(a) != 8 || !p.InEndgame() {
			t.Fatalf("picked %v, endgame %v", a, p.InEndgame())
		}
		p.SetPeerRate(1, ownerRate)
		p.SetPeerRate(2, rate)
		return p, a
	}

	// Owner: a block a second, so block k (1-based) is due in k s. A peer
	// at 8 blocks/s (due at 2(q+1)/8 s + 0.2 s for its q-th duplicate)
	// beats the owner on blocks 8 down to 2 and not on block 1.
	p, a := setup(bs, 8*bs)
	got := p.Pick(2, 8)
	if want := []Block{a[7], a[6], a[5], a[4], a[3], a[2], a[1]}; !slices.Equal(got, want) {
		t.Fatalf("fast peer duplicated %v, want the latest 7 %v", got, want)
	}
	checkInvariants(t, p)

	// A peer as fast as the owner only helps with the last two blocks.
	p, a = setup(bs, bs)
	if got := p.Pick(2, 8); !slices.Equal(got, []Block{a[7], a[6]}) {
		t.Fatalf("equal peer duplicated %v, want %v", got, []Block{a[7], a[6]})
	}

	// Unknown requester rate: a few blocks, the latest.
	p, a = setup(bs, 0)
	if got := p.Pick(2, 8); !slices.Equal(got, []Block{a[7], a[6], a[5], a[4]}) {
		t.Fatalf("unknown-rate peer duplicated %v", got)
	}

	// Unknown owner rate: the classic endgame, everything.
	p, _ = setup(0, bs)
	if got := p.Pick(2, 8); len(got) != 8 {
		t.Fatalf("owner of unknown rate: duplicated %d blocks, want 8", len(got))
	}

	// The owner's queue moves: once it delivered blocks 1-6, blocks 7 and 8
	// are due in 1 and 2 s and an equal peer no longer duplicates them.
	p, a = setup(bs, bs)
	for _, b := range a[:6] {
		p.BlockReceived(1, b)
	}
	if got := p.Pick(2, 8); len(got) != 0 {
		t.Fatalf("duplicated %v although the owner is about to deliver", got)
	}
}
