package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht/krpc"
)

// Routing table constants (BEP 5).
const (
	// K is the bucket size and the number of closest nodes a lookup wants.
	K = 8
	// GoodFor is how long a node stays good after it last answered us (or,
	// having answered once, last queried us); after that it is questionable.
	GoodFor = 15 * time.Minute
	// MaxFails is how many queries in a row a node may miss before it is bad.
	MaxFails = 2
	// RefreshAfter is how long a bucket may stay unchanged before a refresh.
	RefreshAfter = 15 * time.Minute
)

// NodeInfo is a node id and its UDP address.
type NodeInfo = krpc.NodeInfo

// Liveness is a node's state as BEP 5 defines it.
type Liveness int

// Liveness values.
const (
	Good Liveness = iota
	Questionable
	Bad
)

// Node is one routing table entry.
type Node struct {
	ID        ID
	Addr      netip.AddrPort
	LastReply time.Time // last response it sent us
	LastQuery time.Time // last query it sent us
	Fails     int       // queries in a row it did not answer
}

// Liveness returns the node's state at now.
func (n *Node) Liveness(now time.Time) Liveness {
	switch {
	case n.Fails >= MaxFails:
		return Bad
	case now.Sub(n.LastReply) < GoodFor:
		return Good
	case !n.LastReply.IsZero() && now.Sub(n.LastQuery) < GoodFor:
		return Good
	}
	return Questionable
}

func (n *Node) info() NodeInfo { return NodeInfo{ID: n.ID, Addr: n.Addr} }

type bucket struct {
	nodes       []*Node // at most k, oldest first
	replace     []*Node // replacement cache, at most k, newest last
	lastChanged time.Time
}

// Table is a Kademlia routing table of 160 buckets of k nodes, indexed by the
// length of the prefix a node shares with our id. It is a pure state
// machine: time is passed in and it does no I/O. It is not safe for
// concurrent use; its owner serialises calls.
//
// Only nodes that answered one of our queries enter the table (Seen with
// replied=true); a full bucket evicts a bad node, otherwise the newcomer
// waits in the bucket's replacement cache until a node there turns bad.
type Table struct {
	self    ID
	k       int
	buckets [161]bucket
	byID    map[ID]*Node
	// Accept, when set, filters nodes before they enter the table (BEP 42
	// id checks, loopback policy).
	Accept func(id ID, addr netip.AddrPort) bool
}

// NewTable returns an empty table for self with bucket size k.
func NewTable(self ID, k int) *Table {
	return &Table{self: self, k: k, byID: map[ID]*Node{}}
}

// Self returns our own id.
func (t *Table) Self() ID { return t.self }

// Len returns the number of nodes in the table (not counting replacements).
func (t *Table) Len() int { return len(t.byID) }

func (t *Table) bucketOf(id ID) *bucket { return &t.buckets[CommonPrefixLen(t.self, id)] }

// Seen records contact with a node: replied=true when it answered a query
// of ours, false when it queried us. It returns whether the node is in the
// table afterwards.
func (t *Table) Seen(id ID, addr netip.AddrPort, now time.Time, replied bool) bool {
	if id == t.self || !addr.IsValid() || addr.Port() == 0 {
		return false
	}
	if n, ok := t.byID[id]; ok {
		if n.Addr != addr {
			// an id moving to another address is suspicious; accept only
			// once the old entry is bad
			if n.Liveness(now) != Bad {
				return true
			}
			n.Addr = addr
		}
		if replied {
			n.LastReply = now
			n.Fails = 0
		} else {
			n.LastQuery = now
		}
		return true
	}
	if !replied {
		return false
	}
	if t.Accept != nil && !t.Accept(id, addr) {
		return false
	}
	b := t.bucketOf(id)
	nn := &Node{ID: id, Addr: addr, LastReply: now}
	if len(b.nodes) < t.k {
		b.nodes = append(b.nodes, nn)
		t.byID[id] = nn
		b.lastChanged = now
		return true
	}
	for i, old := range b.nodes {
		if old.Liveness(now) == Bad {
			delete(t.byID, old.ID)
			b.nodes = slices.Delete(b.nodes, i, i+1)
			b.nodes = append(b.nodes, nn)
			t.byID[id] = nn
			b.lastChanged = now
			return true
		}
	}
	b.replace = slices.DeleteFunc(b.replace, func(r *Node) bool { return r.ID == id })
	b.replace = append(b.replace, nn)
	if len(b.replace) > t.k {
		b.replace = b.replace[1:]
	}
	return false
}

// WantsNode reports whether a node with this id would enter the table
// right now if it answered (its bucket has room or holds a bad node); the
// server pings unknown queriers only then.
func (t *Table) WantsNode(id ID, now time.Time) bool {
	if id == t.self {
		return false
	}
	if _, ok := t.byID[id]; ok {
		return false
	}
	b := t.bucketOf(id)
	if len(b.nodes) < t.k {
		return true
	}
	for _, n := range b.nodes {
		if n.Liveness(now) == Bad {
			return true
		}
	}
	return false
}

// Failed records that the node at addr did not answer a query. A node that
// turns bad is replaced by the newest node of the replacement cache.
func (t *Table) Failed(id ID, addr netip.AddrPort, now time.Time) {
	n, ok := t.byID[id]
	if !ok || n.Addr != addr {
		return
	}
	n.Fails++
	if n.Liveness(now) != Bad {
		return
	}
	b := t.bucketOf(id)
	if len(b.replace) == 0 {
		return // keep it until someone better shows up
	}
	r := b.replace[len(b.replace)-1]
	b.replace = b.replace[:len(b.replace)-1]
	i := slices.Index(b.nodes, n)
	b.nodes[i] = r
	delete(t.byID, id)
	t.byID[r.ID] = r
	b.lastChanged = now
}

// Remove drops a node from the table.
func (t *Table) Remove(id ID) {
	n, ok := t.byID[id]
	if !ok {
		return
	}
	b := t.bucketOf(id)
	b.nodes = slices.DeleteFunc(b.nodes, func(x *Node) bool { return x == n })
	delete(t.byID, id)
}

// Get returns a copy of the entry for id.
func (t *Table) Get(id ID) (Node, bool) {
	n, ok := t.byID[id]
	if !ok {
		return Node{}, false
	}
	return *n, true
}

// Closest returns up to n nodes closest to target that are not bad, nearest
// first. keep, when not nil, filters them (e.g. by address family).
func (t *Table) Closest(target ID, n int, now time.Time, keep func(NodeInfo) bool) []NodeInfo {
	out := make([]NodeInfo, 0, n+t.k)
	add := func(b *bucket) {
		for _, nd := range b.nodes {
			if nd.Liveness(now) == Bad {
				continue
			}
			if keep != nil && !keep(nd.info()) {
				continue
			}
			out = append(out, nd.info())
		}
	}
	// Nodes sharing a longer prefix with target than with self live in the
	// bucket of target's prefix; the others are ordered by bucket: buckets
	// deeper than target's prefix come next, then shallower ones from the
	// deepest down. Gather in that order and stop once n are surely found.
	p := CommonPrefixLen(t.self, target)
	add(&t.buckets[p])
	for i := p + 1; i < len(t.buckets); i++ {
		add(&t.buckets[i])
	}
	for i := p - 1; i >= 0 && len(out) < n; i-- {
		add(&t.buckets[i])
	}
	slices.SortFunc(out, func(a, b NodeInfo) int {
		switch {
		case closer(target, a.ID, b.ID):
			return -1
		case closer(target, b.ID, a.ID):
			return 1
		}
		return 0
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Questionable returns up to max nodes that are neither good nor bad: the
// owner pings them to learn whether they are still alive.
func (t *Table) Questionable(now time.Time, max int) []NodeInfo {
	var out []NodeInfo
	for i := range t.buckets {
		for _, n := range t.buckets[i].nodes {
			if len(out) == max {
				return out
			}
			if n.Liveness(now) == Questionable {
				out = append(out, n.info())
			}
		}
	}
	return out
}

// RefreshTargets returns a random target id for each bucket that has not
// changed for RefreshAfter, from the shallowest bucket to one past the
// deepest non-empty one. A lookup of each target refreshes its bucket.
func (t *Table) RefreshTargets(now time.Time, rng *rand.Rand) []ID {
	deepest := -1
	for i := range t.buckets {
		if len(t.buckets[i].nodes) > 0 {
			deepest = i
		}
	}
	var out []ID
	for i := 0; i <= min(deepest+1, 159); i++ {
		b := &t.buckets[i]
		if now.Sub(b.lastChanged) >= RefreshAfter {
			out = append(out, randomIDInBucket(t.self, i, rng))
			b.lastChanged = now // one refresh per period
		}
	}
	return out
}

// Nodes returns every node in the table.
func (t *Table) Nodes() []Node {
	out := make([]Node, 0, len(t.byID))
	for i := range t.buckets {
		for _, n := range t.buckets[i].nodes {
			out = append(out, *n)
		}
	}
	return out
}
