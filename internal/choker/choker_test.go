package choker

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newChoker(seed uint64) *Choker { return New(Config{}, rand.New(rand.NewPCG(seed, 1))) }

// old returns an interested peer connected long ago with the given rates.
func old(id PeerID, down, up float64) Peer {
	return Peer{ID: id, Interested: true, DownloadRate: down, UploadRate: up, ConnectedAt: t0.Add(-time.Hour)}
}

func regular(d Decision) []PeerID {
	r := slices.Clone(d.Unchoked)
	if d.HasOptimistic {
		r = r[:len(r)-1]
	}
	slices.Sort(r)
	return r
}

func TestReciprocateTopUploaders(t *testing.T) {
	var peers []Peer
	for i := range 8 {
		peers = append(peers, old(PeerID(i), float64(i*1000), float64(8-i)*1000))
	}
	peers = append(peers, Peer{ID: 99, DownloadRate: 1e9}) // fastest, but not interested
	c := newChoker(1)
	d := c.Round(t0, false, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{4, 5, 6, 7}) {
		t.Fatalf("regular slots %v, want top uploaders 4-7", got)
	}
	if !d.HasOptimistic || d.Optimistic > 3 || d.Unchoked[len(d.Unchoked)-1] != d.Optimistic {
		t.Fatalf("optimistic %v", d)
	}
	if slices.Contains(d.Unchoked, 99) {
		t.Fatal("uninterested peer unchoked")
	}
}

func TestSeedingRanksLeastCompleteFirst(t *testing.T) {
	var peers []Peer
	for i := range 8 {
		p := old(PeerID(i), float64(i*1000), float64(i)*1000) // upload rates no longer matter
		p.Have = float64(i) / 8
		peers = append(peers, p)
	}
	peers[1].Snubbed = true // meaningless while seeding
	c := newChoker(1)
	d := c.Round(t0, true, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{0, 1, 2, 3}) {
		t.Fatalf("seeding regular slots %v, want the least complete 0-3", got)
	}
	// The served peers catch up: 0 and 1 overtake 6 and 7, so the slots
	// move on to 4 and 5 at the next round.
	peers[0].Have, peers[1].Have = 0.99, 1
	d = c.Round(t0.Add(3*time.Second), true, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{2, 3, 4, 5}) {
		t.Fatalf("after 0 and 1 caught up: regular slots %v, want 2-5", got)
	}
}

func TestSeedingKeepsSlotsWithinAPercent(t *testing.T) {
	peers := []Peer{old(1, 0, 0), old(2, 0, 0), old(3, 0, 0)}
	peers[0].Have, peers[1].Have, peers[2].Have = 0.501, 0.503, 0.80
	c := newChoker(3)
	c.cfg.Slots = 1
	first := regular(c.Round(t0, true, peers))
	if len(first) != 1 || first[0] == 3 {
		t.Fatalf("regular %v, want one of the peers at 50 %%", first)
	}
	// The served peer gains a few pieces but stays within the same percent
	// as the other: it keeps the slot, however often rounds run.
	for i := range 20 {
		peers[first[0]-1].Have += 0.0002
		if got := regular(c.Round(t0.Add(time.Duration(i+1)*3*time.Second), true, peers)); !slices.Equal(got, first) {
			t.Fatalf("round %d: regular %v, want %v kept", i+1, got, first)
		}
	}
	// Once a whole percent ahead, it yields to the other.
	peers[first[0]-1].Have = 0.52
	if got := regular(c.Round(t0.Add(time.Minute), true, peers)); slices.Equal(got, first) {
		t.Fatalf("a peer a percent ahead kept the slot: %v", got)
	}
}

func TestFreeRiderOnlyOptimistic(t *testing.T) {
	peers := []Peer{old(1, 500, 0), old(2, 600, 0), old(3, 700, 0), old(4, 800, 0), old(5, 900, 0), old(6, 0, 0), old(7, 0, 0)}
	c := newChoker(2)
	optimisticTimes := 0
	for round := range 300 {
		now := t0.Add(time.Duration(round) * 10 * time.Second)
		// Uploaders' rates fluctuate; the free-rider (6) never sends anything.
		for i := range 5 {
			peers[i].DownloadRate = float64(100 + (round*(i+3))%1000)
		}
		d := c.Round(now, false, peers)
		if slices.Contains(regular(d), 6) {
			t.Fatalf("round %d: free-rider got a regular slot: %v", round, d)
		}
		if d.HasOptimistic && d.Optimistic == 6 {
			optimisticTimes++
		}
	}
	if optimisticTimes == 0 {
		t.Fatal("free-rider never got the optimistic slot")
	}
}

func TestOptimisticRotatesEvery30s(t *testing.T) {
	peers := []Peer{old(1, 900, 0), old(2, 800, 0), old(3, 700, 0), old(4, 600, 0), old(5, 0, 0), old(6, 0, 0), old(7, 0, 0)}
	c := newChoker(3)
	var prev PeerID
	for round := range 13 {
		d := c.Round(t0.Add(time.Duration(round)*10*time.Second), false, peers)
		if !d.HasOptimistic || d.Optimistic < 5 {
			t.Fatalf("round %d: optimistic %v", round, d)
		}
		changed := round > 0 && d.Optimistic != prev
		if want := round > 0 && round%3 == 0; changed != want {
			t.Fatalf("round %d (t=%ds): optimistic changed=%v want %v", round, round*10, changed, want)
		}
		prev = d.Optimistic
	}
}

func TestMidRoundCallKeepsOptimistic(t *testing.T) {
	peers := []Peer{old(1, 900, 0), old(2, 800, 0), old(3, 0, 0), old(4, 0, 0), old(5, 0, 0), old(6, 0, 0)}
	c := New(Config{Slots: 2}, rand.New(rand.NewPCG(4, 1)))
	d := c.Round(t0, false, peers)
	opt := d.Optimistic
	// A fast new peer becomes interested between ticks: it takes a regular slot at once,
	// the optimistic peer stays.
	peers = append(peers, Peer{ID: 7, Interested: true, DownloadRate: 5000, ConnectedAt: t0.Add(4 * time.Second)})
	for _, dt := range []time.Duration{5, 10, 15, 20, 25, 28} {
		d = c.Round(t0.Add(dt*time.Second), false, peers)
		if d.Optimistic != opt {
			t.Fatalf("t=%ds: optimistic rotated %d -> %d", dt, opt, d.Optimistic)
		}
		if got := regular(d); !slices.Equal(got, []PeerID{1, 7}) {
			t.Fatalf("t=%ds: regular %v", dt, got)
		}
	}
	if d = c.Round(t0.Add(30*time.Second), false, peers); d.Optimistic == opt {
		t.Fatal("optimistic not rotated at 30 s")
	}
}

func TestOptimisticReplacedWhenGone(t *testing.T) {
	peers := []Peer{old(1, 900, 0), old(2, 0, 0), old(3, 0, 0)}
	c := New(Config{Slots: 1}, rand.New(rand.NewPCG(5, 1)))
	opt := c.Round(t0, false, peers).Optimistic
	for i := range peers {
		if peers[i].ID == opt {
			peers[i].Interested = false
		}
	}
	d := c.Round(t0.Add(time.Second), false, peers)
	if !d.HasOptimistic || d.Optimistic == opt || slices.Contains(d.Unchoked, opt) {
		t.Fatalf("uninterested optimistic kept: %v", d)
	}
	c.RemovePeer(d.Optimistic)
	if d2 := c.Round(t0.Add(2*time.Second), false, peers[:1]); d2.HasOptimistic || !slices.Equal(d2.Unchoked, []PeerID{1}) {
		t.Fatalf("after removal: %v", d2)
	}
}

func TestNewcomersFavoured(t *testing.T) {
	// Four uploaders fill the regular slots; peer 10 is new, 11-13 are old.
	peers := []Peer{old(1, 900, 0), old(2, 800, 0), old(3, 700, 0), old(4, 600, 0),
		{ID: 10, Interested: true, ConnectedAt: t0.Add(-10 * time.Second)},
		old(11, 0, 0), old(12, 0, 0), old(13, 0, 0)}
	rng := rand.New(rand.NewPCG(6, 1))
	counts := map[PeerID]int{}
	const trials = 3000
	for range trials {
		counts[New(Config{}, rng).Round(t0, false, peers).Optimistic]++
	}
	// Expected shares: newcomer 3/6, each old peer 1/6.
	if counts[10] < trials*42/100 {
		t.Fatalf("newcomer chosen %d/%d times, want about half", counts[10], trials)
	}
	for _, id := range []PeerID{11, 12, 13} {
		if counts[id] > trials*22/100 || counts[id] == 0 {
			t.Fatalf("old peer %d chosen %d/%d times, want about a sixth", id, counts[id], trials)
		}
		if counts[10] < 2*counts[id] {
			t.Fatalf("newcomer %d vs old %d: no clear margin", counts[10], counts[id])
		}
	}
}

func TestSnubbedLosesRegularSlot(t *testing.T) {
	peers := []Peer{old(1, 100, 0), old(2, 200, 0), old(3, 300, 0), old(4, 400, 0), old(5, 5000, 0)}
	c := newChoker(7)
	if d := c.Round(t0, false, peers); !slices.Contains(regular(d), 5) {
		t.Fatalf("top uploader not unchoked: %v", d)
	}
	peers[4].Snubbed = true
	d := c.Round(t0.Add(10*time.Second), false, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{1, 2, 3, 4}) {
		t.Fatalf("regular %v, snubbed peer kept its slot", got)
	}
	// The only other interested peer is the snubbed one: it may be optimistic.
	if !d.HasOptimistic || d.Optimistic != 5 {
		t.Fatalf("snubbed peer not eligible for optimistic: %v", d)
	}
}

func TestOnlyInterestedAndStableTies(t *testing.T) {
	peers := []Peer{old(1, 0, 0), old(2, 0, 0), old(3, 0, 0), old(4, 0, 0), old(5, 0, 0), old(6, 0, 0),
		{ID: 7}, {ID: 8}}
	c := newChoker(8)
	first := regular(c.Round(t0, false, peers))
	for i := 1; i < 20; i++ {
		d := c.Round(t0.Add(time.Duration(i)*time.Second), false, peers)
		if got := regular(d); !slices.Equal(got, first) {
			t.Fatalf("zero-rate ties flap: %v then %v", first, got)
		}
		if slices.Contains(d.Unchoked, 7) || slices.Contains(d.Unchoked, 8) {
			t.Fatal("uninterested peer unchoked")
		}
	}
	if d := c.Round(t0, false, nil); len(d.Unchoked) != 0 || d.HasOptimistic {
		t.Fatalf("no peers: %v", d)
	}
}

func TestRecheckSwapsPeerThatStoppedReciprocating(t *testing.T) {
	// Peers 1-4 upload to us and hold the regular slots; 5 and 6 do not.
	peers := []Peer{old(1, 400, 0), old(2, 300, 0), old(3, 300, 0), old(4, 300, 0), old(5, 0, 0), old(6, 0, 0)}
	peers[4].ChokingUs, peers[5].ChokingUs = true, true
	c := newChoker(7)
	c.cfg.Slots = 4
	d := c.Round(t0, false, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{1, 2, 3, 4}) {
		t.Fatalf("regular %v, want 1-4", got)
	}
	now := t0.Add(time.Second)
	if _, changed := c.Recheck(now, false, peers); changed {
		t.Fatal("nothing changed, yet Recheck moved a slot")
	}
	// 2 chokes us, 5 unchokes us; 5's smoothed rate is still below 2's.
	peers[1].ChokingUs, peers[1].DownloadRate = true, 200
	peers[4].ChokingUs, peers[4].DownloadRate = false, 150
	if _, changed := c.Recheck(now, false, peers); changed {
		t.Fatal("swapped before the new partner sent faster than the old one")
	}
	// A peer that still reciprocates keeps its slot, however slow: 4 stays
	// although 5 sends faster.
	peers[3].DownloadRate = 150
	// Now 5 overtakes 2.
	peers[1].DownloadRate, peers[4].DownloadRate = 100, 250
	d, changed := c.Recheck(now.Add(time.Second), false, peers)
	if !changed {
		t.Fatal("2 chokes us and 5 sends faster, yet no swap")
	}
	if got := regular(d); !slices.Equal(got, []PeerID{1, 3, 4, 5}) {
		t.Fatalf("regular %v, want 1 3 4 5", got)
	}
	// The next round keeps the swapped set (equal standing keeps slots).
	if got := regular(c.Round(now.Add(2*time.Second), false, peers)); !slices.Equal(got, []PeerID{1, 3, 4, 5}) {
		t.Fatalf("next round regular %v, want 1 3 4 5", got)
	}
	if _, changed := c.Recheck(now, true, peers); changed {
		t.Fatal("Recheck acted while seeding")
	}
}

func TestOptimisticGoesToLagger(t *testing.T) {
	var peers []Peer
	for i := range 8 {
		p := old(PeerID(i), 100, 0)
		p.Have = 0.50
		peers = append(peers, p)
	}
	peers[6].Have, peers[6].DownloadRate = 0.30, 0 // fell behind; never a regular
	for seed := range uint64(20) {
		c := newChoker(seed)
		c.cfg.Slots = 2
		c.SetProgress(0.50)
		if d := c.Round(t0, false, peers); d.Optimistic != 6 {
			t.Fatalf("seed %d: optimistic %d, want the lagger 6", seed, d.Optimistic)
		}
	}
	// Without a lagger (a peer at least 2 % behind us) the pick is random.
	peers[6].Have = 0.495
	picked := map[PeerID]bool{}
	for seed := range uint64(40) {
		c := newChoker(seed)
		c.cfg.Slots = 2
		c.SetProgress(0.50)
		picked[c.Round(t0, false, peers).Optimistic] = true
	}
	if len(picked) < 4 {
		t.Fatalf("optimistic picks %v: not random without a lagger", picked)
	}
	// The lagger keeps the slot while it trails us, and loses it at the
	// next recheck once it has caught up.
	peers[6].Have = 0.30
	c := newChoker(3)
	c.cfg.Slots = 2
	c.SetProgress(0.50)
	d := c.Round(t0, false, peers)
	if d.Optimistic != 6 {
		t.Fatalf("optimistic %d, want 6", d.Optimistic)
	}
	peers[6].Have = 0.45
	if _, changed := c.Recheck(t0.Add(time.Second), false, peers); changed {
		t.Fatal("the lagger lost its slot while still behind")
	}
	peers[6].Have = 0.50
	d, changed := c.Recheck(t0.Add(2*time.Second), false, peers)
	if !changed || d.Optimistic == 6 || !d.HasOptimistic {
		t.Fatalf("caught-up lagger kept the slot: %+v changed=%v", d, changed)
	}
}

func TestSeedOptimisticIsNextLeastCompleteEveryRound(t *testing.T) {
	var peers []Peer
	for i := range 8 {
		p := old(PeerID(i), 0, 0)
		p.Have = 0.1 * float64(i+1)
		peers = append(peers, p)
	}
	c := newChoker(5)
	c.cfg.Slots = 2
	d := c.Round(t0, true, peers)
	if got := regular(d); !slices.Equal(got, []PeerID{0, 1}) || d.Optimistic != 2 {
		t.Fatalf("seeding: regular %v optimistic %d, want 0 1 and 2", got, d.Optimistic)
	}
	// 2 catches up past 3 and 4: three seconds later the optimistic slot
	// has moved on, not stayed 30 s with a peer now ahead.
	peers[2].Have = 0.55
	if d := c.Round(t0.Add(3*time.Second), true, peers); d.Optimistic != 3 {
		t.Fatalf("next seeding round: optimistic %d, want 3", d.Optimistic)
	}
}
