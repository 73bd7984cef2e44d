// Package choker is shoal's pure tit-for-tat unchoke logic.
//
// Every round (10 s by default, ticked by the caller) Round decides which
// peers we upload to:
//
//   - Regular slots (Config.Slots, default 4) go to the interested peers
//     that deserve them most. While leeching that is the peers that upload
//     to us fastest (DownloadRate): we reciprocate. Snubbed peers (nothing
//     received for a minute although we asked) are excluded. While seeding
//     it is the peers that hold the least of the torrent (Have, compared in
//     steps of 1 %): a seed gets nothing back, so its upload goes where it
//     evens out the swarm. Newcomers get pieces to trade, and peers that
//     fell behind catch up instead of finishing long after the rest. As the
//     served peers catch up they lose their slots, so the caller runs
//     seeding rounds more often than leeching ones. Equal scores keep peers
//     that were already unchoked, then are broken at random, so peers do
//     not flap.
//   - One optimistic slot goes to a random other interested peer, with
//     peers connected for less than NewPeerAge weighted 3x: it gives
//     newcomers and free-riders a chance to show what they upload, and finds
//     better partners. It rotates when OptimisticRounds rounds of time have
//     passed, or earlier if its peer is gone, not interested, or has earned
//     a regular slot. A snubbed peer may still be optimistic. While
//     leeching (SetProgress tells our own share), a peer that trails us by
//     lagSteps percent or more takes precedence: the optimistic slot goes to
//     the peers furthest behind, and moves on once its peer has caught up.
//     In a swarm of equals, tit-for-tat alone lets whoever happens to be
//     reciprocated least fall further behind; this pulls it back. A seed
//     re-picks its optimistic peer every round, the least complete one
//     outside the regular slots: kept 30 s, it was a leader by the end.
//
// Only interested peers are ever unchoked. Round may be called between
// ticks (a new peer became interested while slots are free): the regular
// slots are recomputed, the optimistic peer is kept. Recheck, ticked every
// second while leeching, does what cannot wait ten seconds: it swaps a
// regular peer that has choked us for one that unchokes us and now sends
// faster, and moves the optimistic slot as above.
//
// The package reads no clock and uses only the *rand.Rand it is given. A
// Choker is not safe for concurrent use; it is owned by the torrent's run
// loop.
package choker

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// PeerID is an opaque peer handle chosen by the caller.
type PeerID uint64

// Peer is the caller's view of one connection at the time of a round.
type Peer struct {
	ID           PeerID
	Interested   bool    // the peer wants our data
	DownloadRate float64 // bytes/s it sent us recently
	UploadRate   float64 // bytes/s we sent it recently
	Have         float64 // fraction of the torrent it holds, 0..1 (ranks peers while seeding)
	Snubbed      bool    // sent us nothing for 60 s while we wanted data from it
	ChokingUs    bool    // it chokes us now
	ConnectedAt  time.Time
}

// Config tunes the choker; zero fields take the defaults.
type Config struct {
	Slots            int           // regular unchoke slots, default 4; negative for none
	OptimisticRounds int           // rotate the optimistic unchoke every N rounds, default 3
	NewPeerAge       time.Duration // younger peers are 3x as likely to be optimistic, default 60 s
	Round            time.Duration // round length, default 10 s
}

// Decision is the outcome of a round.
type Decision struct {
	Unchoked      []PeerID // everyone to unchoke (regular slots, then the optimistic peer); choke the rest
	Optimistic    PeerID
	HasOptimistic bool
}

// Defaults for Config fields left zero.
const (
	DefaultSlots            = 4
	DefaultOptimisticRounds = 3
	DefaultNewPeerAge       = 60 * time.Second
	DefaultRound            = 10 * time.Second
	newcomerWeight          = 3
)

// Choker remembers the optimistic peer and the last regular set between
// rounds. cfg and rng are static after New; the rest is owned by the caller's
// goroutine.
type Choker struct {
	cfg Config
	rng *rand.Rand

	opt      PeerID
	hasOpt   bool
	optLag   bool // the optimistic peer was picked because it lagged behind us
	optSince time.Time
	regular  map[PeerID]bool // regular slots of the last round
	own      float64         // our share of the torrent, 0..1 (SetProgress)
}

// lagSteps is how many whole percent a leecher must trail ours before the
// optimistic slot goes to it rather than to a random peer.
const lagSteps = 2

// SetProgress tells the choker how much of the torrent we hold (0..1), so a
// leeching optimistic slot can go to the peers that fell behind.
func (c *Choker) SetProgress(have float64) { c.own = have }

// behind is how many whole percent p trails own progress (0 if not).
func behind(p Peer, own float64) float64 {
	return max(0, haveStep(own)-haveStep(p.Have))
}

// New returns a Choker; rng supplies every random choice.
func New(cfg Config, rng *rand.Rand) *Choker {
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	cfg.Slots = max(cfg.Slots, 0)
	if cfg.OptimisticRounds <= 0 {
		cfg.OptimisticRounds = DefaultOptimisticRounds
	}
	if cfg.NewPeerAge <= 0 {
		cfg.NewPeerAge = DefaultNewPeerAge
	}
	if cfg.Round <= 0 {
		cfg.Round = DefaultRound
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	return &Choker{cfg: cfg, rng: rng, regular: map[PeerID]bool{}}
}

// rotateAfter is how long an optimistic unchoke lasts. A tenth of a round
// is forgiven so a tick that fires slightly early still rotates.
func (c *Choker) rotateAfter() time.Duration {
	return time.Duration(c.cfg.OptimisticRounds)*c.cfg.Round - c.cfg.Round/10
}

// haveStep is a peer's share of the torrent in whole percent, so peers a
// few pieces apart count as equal and keep their slots.
func haveStep(h float64) float64 {
	if math.IsNaN(h) || h < 0 {
		return 0
	}
	return math.Floor(min(h, 1) * 100)
}

func rate(r float64) float64 {
	if math.IsNaN(r) || r < 0 {
		return 0
	}
	return r
}

// Round computes which peers to unchoke now.
func (c *Choker) Round(now time.Time, seeding bool, peers []Peer) Decision {
	seen := make(map[PeerID]bool, len(peers))
	var cands []Peer
	interested := map[PeerID]bool{}
	for _, p := range peers {
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		if !p.Interested {
			continue
		}
		interested[p.ID] = true
		if seeding || !p.Snubbed {
			cands = append(cands, p)
		}
	}
	// Random order first, so the stable sort breaks remaining ties randomly.
	c.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	score := func(p Peer) float64 {
		if seeding {
			return -haveStep(p.Have) // the least complete first
		}
		return rate(p.DownloadRate)
	}
	slices.SortStableFunc(cands, func(a, b Peer) int {
		if r := cmp.Compare(score(b), score(a)); r != 0 {
			return r
		}
		ka, kb := c.regular[a.ID], c.regular[b.ID]
		switch {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		return 0
	})
	var d Decision
	regular := map[PeerID]bool{}
	for _, p := range cands[:min(len(cands), c.cfg.Slots)] {
		regular[p.ID] = true
		d.Unchoked = append(d.Unchoked, p.ID)
	}
	c.regular = regular

	// A seed's optimistic peer rotates every round: it learns nothing from
	// keeping one, and a peer kept for 30 s gets ahead of the swarm.
	keep := c.hasOpt && interested[c.opt] && !regular[c.opt] && now.Sub(c.optSince) < c.rotateAfter() && !seeding
	if keep {
		keep = c.optStillFits(peers)
	}
	if !keep {
		c.chooseOptimistic(now, seeding, peers, seen, regular)
	}
	return c.addOptimistic(d)
}

// chooseOptimistic picks a random interested peer outside the regular
// slots, newcomers weighted 3x, avoiding the current one if possible.
func (c *Choker) chooseOptimistic(now time.Time, seeding bool, peers []Peer, seen, regular map[PeerID]bool) {
	type cand struct {
		id     PeerID
		w      int
		behind float64
	}
	own := c.own
	if seeding {
		own = 1 // a seed's optimistic slot goes to the least complete
	}
	var cs []cand
	total := 0
	for _, p := range peers {
		if !p.Interested || regular[p.ID] || !seen[p.ID] {
			continue
		}
		seen[p.ID] = false // count duplicates once
		w := 1
		if !p.ConnectedAt.IsZero() && now.Sub(p.ConnectedAt) < c.cfg.NewPeerAge {
			w = newcomerWeight
		}
		cs = append(cs, cand{p.ID, w, behind(p, own)})
		total += w
	}
	c.optLag = false
	{
		most := 0.0
		for _, x := range cs {
			most = max(most, x.behind)
		}
		if most >= lagSteps {
			// Laggers first: keep only the peers within a percent of the
			// one furthest behind.
			cs = slices.DeleteFunc(cs, func(x cand) bool { return x.behind < most-1 })
			total = 0
			for _, x := range cs {
				total += x.w
			}
			c.optLag = true
		}
	}
	if c.hasOpt && len(cs) > 1 {
		for i, x := range cs {
			if x.id == c.opt {
				total -= x.w
				cs = slices.Delete(cs, i, i+1)
				break
			}
		}
	}
	c.optSince = now
	if len(cs) == 0 {
		c.hasOpt = false
		return
	}
	r := c.rng.IntN(total)
	for _, x := range cs {
		if r < x.w {
			c.opt, c.hasOpt = x.id, true
			return
		}
		r -= x.w
	}
}

// optStillFits reports whether the leeching optimistic peer may keep its
// slot: a lagger keeps it while it still trails us, a random pick while no
// peer lags.
func (c *Choker) optStillFits(peers []Peer) bool {
	lagging := false
	for _, p := range peers {
		if !p.Interested || c.regular[p.ID] {
			continue
		}
		b := behind(p, c.own)
		if p.ID == c.opt {
			if c.optLag {
				return b >= 1
			}
			continue
		}
		if b >= lagSteps {
			lagging = true
		}
	}
	return !lagging
}

// Recheck runs between rounds while leeching (the caller ticks it every
// second). Two things cannot wait for the next round:
//
//   - Reciprocation: a regular peer that now chokes us, while a peer outside
//     the regular slots unchokes us and sends faster, swap places. The rates
//     are smoothed, so the swap waits until the peer that stopped has
//     really fallen below the one that started; peers that keep
//     reciprocating are never moved.
//   - The optimistic slot moves when the lagger it serves has caught up, or
//     a peer now lags while it serves a random one.
//
// It reports whether the decision changed.
func (c *Choker) Recheck(now time.Time, seeding bool, peers []Peer) (Decision, bool) {
	if seeding {
		return Decision{}, false
	}
	byID := make(map[PeerID]Peer, len(peers))
	seen := make(map[PeerID]bool, len(peers))
	for _, p := range peers {
		byID[p.ID] = p
		seen[p.ID] = true
	}
	changed := false
	for id := range c.regular {
		r, ok := byID[id]
		if !ok || !r.ChokingUs {
			continue
		}
		var best *Peer
		for i := range peers {
			p := &peers[i]
			if !p.Interested || p.Snubbed || p.ChokingUs || c.regular[p.ID] || rate(p.DownloadRate) <= rate(r.DownloadRate) {
				continue
			}
			if best == nil || rate(p.DownloadRate) > rate(best.DownloadRate) {
				best = p
			}
		}
		if best == nil {
			continue
		}
		delete(c.regular, id)
		c.regular[best.ID] = true
		changed = true
		if c.hasOpt && c.opt == best.ID {
			c.hasOpt = false
		}
	}
	if c.hasOpt && !c.optStillFits(peers) || !c.hasOpt && changed {
		old, had := c.opt, c.hasOpt
		c.chooseOptimistic(now, seeding, peers, seen, c.regular)
		changed = changed || c.hasOpt != had || c.opt != old
	}
	if !changed {
		return Decision{}, false
	}
	var d Decision
	for _, p := range peers {
		if c.regular[p.ID] {
			d.Unchoked = append(d.Unchoked, p.ID)
		}
	}
	return c.addOptimistic(d), true
}

// addOptimistic appends the optimistic peer, if any, to d.
func (c *Choker) addOptimistic(d Decision) Decision {
	if c.hasOpt {
		d.Optimistic, d.HasOptimistic = c.opt, true
		d.Unchoked = append(d.Unchoked, c.opt)
	}
	return d
}

// RemovePeer forgets a disconnected peer.
func (c *Choker) RemovePeer(id PeerID) {
	delete(c.regular, id)
	if c.hasOpt && c.opt == id {
		c.hasOpt = false
	}
}
