package picker

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func TestDeadlineOrder(t *testing.T) {
	p := newPicker(t, oneBlockPieces(10), 1)
	p.PeerHaveAll(1)
	p.SetDeadline(7, t0.Add(3*time.Second))
	p.SetDeadline(4, t0.Add(time.Second))
	p.SetDeadline(9, t0.Add(2*time.Second))
	p.SetPriority(2, High) // High without deadline: after deadline pieces of the same priority
	var got []int
	for range 4 {
		b := p.PickAt(1, 1, t0)
		if len(b) != 1 {
			t.Fatalf("picked %v", b)
		}
		got = append(got, b[0].Piece)
	}
	if want := []int{4, 9, 7, 2}; !equalInts(got, want) {
		t.Fatalf("order %v, want %v (nearest deadline first)", got, want)
	}
	checkInvariants(t, p)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeadlineOutsideWindowRarestFirst(t *testing.T) {
	p := newPicker(t, oneBlockPieces(6), 1)
	p.PeerBitfield(1, bits(6, 0, 1, 2, 3, 4, 5))
	p.PeerBitfield(2, bits(6, 0, 1, 2, 3, 4))
	p.PeerBitfield(3, bits(6, 0, 1, 2, 3))
	p.SetDeadline(0, t0.Add(time.Second))
	got := []int{}
	for range 3 {
		got = append(got, p.PickAt(1, 1, t0)[0].Piece)
	}
	// 0 by deadline, then the rarest: 5 (one peer), 4 (two peers).
	if want := []int{0, 5, 4}; !equalInts(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestClearDeadlines(t *testing.T) {
	p := newPicker(t, oneBlockPieces(5), 1)
	p.PeerHaveAll(1)
	p.SetDeadline(3, t0)
	p.SetDeadline(4, t0)
	if p.NumDeadlines() != 2 || len(p.hot) != 2 {
		t.Fatalf("%d deadlines, %d hot", p.NumDeadlines(), len(p.hot))
	}
	p.SetPriority(4, Urgent)
	p.ClearDeadlines()
	if p.NumDeadlines() != 0 {
		t.Fatal("deadlines left")
	}
	// 3 leaves the hot set, 4 stays (Urgent).
	if len(p.hot) != 1 || p.hot[0] != 4 {
		t.Fatalf("hot %v, want [4]", p.hot)
	}
	p.SetDeadline(1, t0)
	p.SetDeadline(1, time.Time{})
	if _, ok := p.Deadline(1); ok || len(p.hot) != 1 {
		t.Fatal("zero time did not clear the deadline")
	}
	// MarkHave drops the deadline; a had piece takes none.
	p.SetDeadline(2, t0)
	p.MarkHave(2)
	p.SetDeadline(2, t0)
	if _, ok := p.Deadline(2); ok {
		t.Fatal("had piece keeps a deadline")
	}
	// Skip stays skipped.
	p.SetPriority(0, Skip)
	p.SetDeadline(0, t0)
	for _, b := range p.PickAt(1, 10, t0) {
		if b.Piece == 0 {
			t.Fatal("Skip piece with a deadline picked")
		}
	}
	checkInvariants(t, p)
}

func TestDeadlineToFastPeer(t *testing.T) {
	// Pieces of 4 blocks (64 KiB).
	cfg := Config{NumPieces: 8, PieceLength: 65536, TotalLength: 8 * 65536, RandomFirst: -1}
	p := newPicker(t, cfg, 1)
	p.PeerHaveAll(1) // slow: 10 KB/s → a piece takes 6.5 s
	p.PeerHaveAll(2) // fast: 1 MB/s
	p.SetPeerRate(1, 10e3)
	p.SetPeerRate(2, 1e6)
	p.SetDeadline(5, t0.Add(time.Second))
	for _, b := range p.PickAt(1, 4, t0) {
		if b.Piece == 5 {
			t.Fatalf("slow peer got deadline piece 5 it cannot deliver in time: %v", b)
		}
	}
	got := p.PickAt(2, 4, t0)
	if len(got) == 0 || got[0].Piece != 5 {
		t.Fatalf("fast peer got %v, want piece 5 first", got)
	}
	// A far deadline is fine for the slow peer.
	p.SetDeadline(6, t0.Add(time.Minute))
	got = p.PickAt(1, 4, t0.Add(0))
	if len(got) == 0 || got[0].Piece != 6 {
		t.Fatalf("slow peer got %v, want the far deadline piece 6", got)
	}
	checkInvariants(t, p)
}

func TestDeadlineRace(t *testing.T) {
	p := newPicker(t, oneBlockPieces(4), 1)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.SetDeadline(0, t0.Add(10*time.Second))
	if b := p.PickAt(1, 1, t0); len(b) != 1 || b[0].Piece != 0 {
		t.Fatalf("peer 1 got %v", b)
	}
	// Far from the deadline: peer 2 gets other pieces, no duplicate.
	for _, b := range p.PickAt(2, 3, t0) {
		if b.Piece == 0 {
			t.Fatal("block raced while its deadline is far")
		}
	}
	p = newPicker(t, oneBlockPieces(4), 1)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.SetDeadline(0, t0.Add(10*time.Second))
	p.PickAt(1, 1, t0)
	// 9 s later the block is about to miss: peer 2 races it.
	got := p.PickAt(2, 1, t0.Add(9*time.Second))
	if len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("peer 2 got %v near the deadline, want the in-flight block of piece 0", got)
	}
	dup, cancels, done := p.BlockReceived(2, got[0])
	if dup || !done || len(cancels) != 1 || cancels[0].Peer != 1 {
		t.Fatalf("race win: dup %v done %v cancels %v", dup, done, cancels)
	}
	checkInvariants(t, p)
}

func TestDeadlinePartialFirst(t *testing.T) {
	// Two started pieces: the one with the nearer deadline is continued first.
	cfg := Config{NumPieces: 4, PieceLength: 65536, TotalLength: 4 * 65536, RandomFirst: -1}
	p := newPicker(t, cfg, 1)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.PickFast(1, []int{1}, 1)
	p.PickFast(1, []int{2}, 1)
	p.SetDeadline(1, t0.Add(5*time.Second))
	p.SetDeadline(2, t0.Add(time.Second))
	got := p.PickAt(2, 1, t0)
	if len(got) != 1 || got[0].Piece != 2 {
		t.Fatalf("got %v, want a block of piece 2 (nearest deadline)", got)
	}
}
