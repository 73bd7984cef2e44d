package dht

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The simulation drives the pure Table and Lookup over an in-memory network
// with a virtual clock: every message takes 10-100 ms, a query to a gone
// node times out after 1 s. Nodes join one by one with a find_node lookup of
// their own id through node 0, answering nodes enter the querier's table,
// and a queried node adds the querier (as the real server does after
// pinging it back); then every node refreshes its buckets once. Churn removes nodes without notice: their entries stay
// in everyone's table.

type simNode struct {
	info  NodeInfo
	table *Table
	dead  bool
}

type simNet struct {
	rng    *rand.Rand
	nodes  []*simNode
	byAddr map[netip.AddrPort]*simNode
}

const simTimeout = 1.0 // seconds

func newSimNet(n int, seed uint64) *simNet {
	sn := &simNet{rng: rand.New(rand.NewPCG(seed, 99)), byAddr: map[netip.AddrPort]*simNode{}}
	for i := 0; i < n; i++ {
		nd := &simNode{info: NodeInfo{ID: RandomID(sn.rng), Addr: addrN(i)}}
		nd.table = NewTable(nd.info.ID, K)
		sn.nodes = append(sn.nodes, nd)
		sn.byAddr[nd.info.Addr] = nd
		if i > 0 {
			sn.lookup(nd, nd.info.ID, []NodeInfo{{Addr: sn.nodes[0].info.Addr}})
		}
	}
	// one bucket refresh round, as every node runs each RefreshAfter
	for _, nd := range sn.nodes {
		for _, target := range nd.table.RefreshTargets(t0.Add(RefreshAfter), sn.rng) {
			sn.lookup(nd, target, nil)
		}
	}
	return sn
}

type simResult struct {
	closest  []Result
	queries  int
	rounds   int
	duration float64
}

type simEvent struct {
	at float64
	to NodeInfo
}

// lookup runs one lookup from src in virtual time.
func (sn *simNet) lookup(src *simNode, target ID, seeds []NodeInfo) simResult {
	if seeds == nil {
		seeds = src.table.Closest(target, K, t0, nil)
	}
	l := NewLookup(target, K, Alpha, seeds)
	var pending []simEvent
	now := 0.0
	for {
		for _, q := range l.Next() {
			d := 0.01 + 0.09*sn.rng.Float64()
			if dst := sn.byAddr[q.Addr]; dst == nil || dst.dead {
				d = simTimeout
			}
			pending = append(pending, simEvent{at: now + d, to: q})
		}
		if l.Done() || len(pending) == 0 {
			break
		}
		i := 0
		for j := range pending {
			if pending[j].at < pending[i].at {
				i = j
			}
		}
		ev := pending[i]
		pending = slices.Delete(pending, i, i+1)
		now = ev.at
		dst := sn.byAddr[ev.to.Addr]
		if dst == nil || dst.dead {
			l.OnFailure(ev.to.Addr)
			src.table.Failed(ev.to.ID, ev.to.Addr, t0)
			continue
		}
		// the queried node learns of the querier
		if dst.table.WantsNode(src.info.ID, t0) {
			dst.table.Seen(src.info.ID, src.info.Addr, t0, true)
		}
		src.table.Seen(dst.info.ID, dst.info.Addr, t0, true)
		l.OnReply(dst.info, dst.table.Closest(target, K, t0, nil), "")
	}
	return simResult{closest: l.Closest(), queries: l.Queries, rounds: l.MaxHop + 1, duration: now}
}

func (sn *simNet) churn(frac float64) {
	for _, i := range sn.rng.Perm(len(sn.nodes))[:int(frac*float64(len(sn.nodes)))] {
		sn.nodes[i].dead = true
	}
}

func (sn *simNet) trueClosest(target ID) NodeInfo {
	var best *simNode
	for _, nd := range sn.nodes {
		if !nd.dead && (best == nil || closer(target, nd.info.ID, best.info.ID)) {
			best = nd
		}
	}
	return best.info
}

type simRow struct {
	n                         int
	churn                     float64
	lookups, ok               int
	msgs, rounds, virtualSecs float64
}

func (sn *simNet) measure(lookups int, churn float64) simRow {
	row := simRow{n: len(sn.nodes), churn: churn, lookups: lookups}
	for i := 0; i < lookups; i++ {
		src := sn.nodes[sn.rng.IntN(len(sn.nodes))]
		for src.dead {
			src = sn.nodes[sn.rng.IntN(len(sn.nodes))]
		}
		target := RandomID(sn.rng)
		r := sn.lookup(src, target, nil)
		if len(r.closest) > 0 && r.closest[0].Node == sn.trueClosest(target) {
			row.ok++
		}
		row.msgs += float64(r.queries)
		row.rounds += float64(r.rounds)
		row.virtualSecs += r.duration
	}
	row.msgs /= float64(lookups)
	row.rounds /= float64(lookups)
	row.virtualSecs /= float64(lookups)
	return row
}

func TestSimLookups(t *testing.T) {
	sizes := []int{1000, 2000, 5000}
	lookups := map[int]int{1000: 400, 2000: 400, 5000: 300}
	if testing.Short() {
		sizes = []int{1000}
	}
	start := time.Now()
	var rows []simRow
	for _, n := range sizes {
		sn := newSimNet(n, uint64(n))
		rows = append(rows, sn.measure(lookups[n], 0))
		sn.churn(0.2)
		rows = append(rows, sn.measure(lookups[n], 0.2))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%7s %6s %8s %9s %10s %8s %12s\n", "nodes", "churn", "lookups", "success", "msgs/lkp", "rounds", "virtual s")
	for _, r := range rows {
		fmt.Fprintf(&b, "%7d %5.0f%% %8d %8.1f%% %10.1f %8.2f %12.2f\n", r.n, r.churn*100, r.lookups,
			100*float64(r.ok)/float64(r.lookups), r.msgs, r.rounds, r.virtualSecs)
	}
	t.Logf("k=%d alpha=%d, success = the closest live node is the lookup's first result%s(wall %v)", K, Alpha, b.String(), time.Since(start).Round(time.Millisecond))
	for _, r := range rows {
		rate := float64(r.ok) / float64(r.lookups)
		if r.churn == 0 && rate < 0.99 {
			t.Errorf("N=%d without churn: success %.1f%% < 99%%", r.n, 100*rate)
		}
		if r.churn > 0 && rate < 0.95 {
			t.Errorf("N=%d with churn: success %.1f%% < 95%%", r.n, 100*rate)
		}
	}
	if len(rows) == 6 {
		// logarithmic growth: 5x the nodes must cost far less than 5x the messages
		// (log2(5000)/log2(1000) is 1.23)
		if rows[4].msgs > 1.6*rows[0].msgs {
			t.Errorf("messages grow too fast: %.1f at 1000 nodes, %.1f at 5000", rows[0].msgs, rows[4].msgs)
		}
	}
}
