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
//     a regular slot. A snubbed peer may still be optimistic.
//
// Only interested peers are ever unchoked. Round may be called between
// ticks (a new peer became interested while slots are free): the regular
// slots are recomputed, the optimistic peer is kept.
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
	optSince time.Time
	regular  map[PeerID]bool // regular slots of the last round
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

	keep := c.hasOpt && interested[c.opt] && !regular[c.opt] && now.Sub(c.optSince) < c.rotateAfter()
	if !keep {
		c.chooseOptimistic(now, peers, seen, regular)
	}
	if c.hasOpt {
		d.Optimistic, d.HasOptimistic = c.opt, true
		d.Unchoked = append(d.Unchoked, c.opt)
	}
	return d
}

// chooseOptimistic picks a random interested peer outside the regular
// slots, newcomers weighted 3x, avoiding the current one if possible.
func (c *Choker) chooseOptimistic(now time.Time, peers []Peer, seen, regular map[PeerID]bool) {
	type cand struct {
		id PeerID
		w  int
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
		cs = append(cs, cand{p.ID, w})
		total += w
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

// RemovePeer forgets a disconnected peer.
func (c *Choker) RemovePeer(id PeerID) {
	delete(c.regular, id)
	if c.hasOpt && c.opt == id {
		c.hasOpt = false
	}
}
