package dht

import (
	"net/netip"
	"slices"
)

// Alpha is the number of queries a lookup keeps in flight.
const Alpha = 3

// maxCandidates bounds the candidates a lookup remembers; the farthest
// unqueried ones are dropped first.
const maxCandidates = 128

type candState uint8

const (
	candNew candState = iota
	candInFlight
	candReplied
	candFailed
)

type candidate struct {
	info  NodeInfo
	state candState
	anon  bool // bootstrap address: id unknown until it answers
	hop   int  // 0 for seeds, parent's hop + 1 for nodes learned from a reply
	token string
}

// Result is a node that answered a lookup, with the token it gave (get_peers).
type Result struct {
	Node  NodeInfo
	Token string
}

// Lookup is the iterative Kademlia lookup as a pure state machine: Next
// says whom to query, OnReply and OnFailure feed the answers back. It keeps
// at most alpha queries in flight and is done when the k closest nodes it
// knows of (that did not fail) have all answered. It does no I/O and is not
// safe for concurrent use.
type Lookup struct {
	target   ID
	k, alpha int
	cands    []*candidate // known ids, nearest first
	anon     []*candidate // bootstrap addresses without ids
	byAddr   map[netip.AddrPort]*candidate
	inFlight int
	// Queries counts the queries handed out by Next; MaxHop is the largest
	// hop count of a queried node (the number of rounds of the lookup).
	Queries, MaxHop int
}

// NewLookup starts a lookup of target from seeds. Seeds with a zero id are
// bootstrap addresses whose id is unknown: they are queried first.
func NewLookup(target ID, k, alpha int, seeds []NodeInfo) *Lookup {
	l := &Lookup{target: target, k: k, alpha: alpha, byAddr: map[netip.AddrPort]*candidate{}}
	for _, s := range seeds {
		if s.ID == (ID{}) {
			if _, dup := l.byAddr[s.Addr]; !dup && s.Addr.IsValid() {
				c := &candidate{info: s, anon: true}
				l.anon = append(l.anon, c)
				l.byAddr[s.Addr] = c
			}
			continue
		}
		l.add(s, 0)
	}
	return l
}

// Target returns the id being looked up.
func (l *Lookup) Target() ID { return l.target }

func (l *Lookup) add(n NodeInfo, hop int) {
	if !n.Addr.IsValid() || n.Addr.Port() == 0 {
		return
	}
	if _, dup := l.byAddr[n.Addr]; dup {
		return
	}
	i, _ := slices.BinarySearchFunc(l.cands, ID(n.ID), func(c *candidate, id ID) int {
		switch {
		case closer(l.target, c.info.ID, id):
			return -1
		case closer(l.target, id, c.info.ID):
			return 1
		}
		return 0
	})
	if i < len(l.cands) && l.cands[i].info.ID == n.ID {
		return // same id at another address: keep the first
	}
	if len(l.cands) >= maxCandidates {
		// drop the farthest unqueried candidate, or refuse n if n is it
		j := len(l.cands) - 1
		for j >= 0 && l.cands[j].state != candNew {
			j--
		}
		if j < i {
			return
		}
		delete(l.byAddr, l.cands[j].info.Addr)
		l.cands = slices.Delete(l.cands, j, j+1)
	}
	c := &candidate{info: n, hop: hop}
	l.cands = slices.Insert(l.cands, i, c)
	l.byAddr[n.Addr] = c
}

// Next returns the nodes to query now and marks them in flight: bootstrap
// addresses first, then the nearest unqueried nodes among the k closest,
// while fewer than alpha queries are in flight.
func (l *Lookup) Next() []NodeInfo {
	var out []NodeInfo
	for _, c := range l.anon {
		if c.state == candNew && l.inFlight < l.alpha {
			c.state = candInFlight
			l.inFlight++
			l.Queries++
			out = append(out, c.info)
		}
	}
	seen := 0
	for _, c := range l.cands {
		if l.inFlight >= l.alpha || seen >= l.k {
			break
		}
		if c.state == candFailed {
			continue
		}
		seen++
		if c.state == candNew {
			c.state = candInFlight
			l.inFlight++
			l.Queries++
			l.MaxHop = max(l.MaxHop, c.hop)
			out = append(out, c.info)
		}
	}
	return out
}

// OnReply records an answer from the node at from.Addr: its id, the closer
// nodes it named and, for get_peers, its token. Replies from addresses not
// queried by this lookup are ignored.
func (l *Lookup) OnReply(from NodeInfo, nodes []NodeInfo, token string) {
	c, ok := l.byAddr[from.Addr]
	if !ok || c.state != candInFlight {
		return
	}
	l.inFlight--
	c.state = candReplied
	c.token = token
	if c.anon {
		// a bootstrap node: now that its id is known, it is a candidate
		c.anon = false
		delete(l.byAddr, from.Addr)
		l.add(from, 0)
		if nc, ok := l.byAddr[from.Addr]; ok {
			nc.state = candReplied
			nc.token = token
		}
	}
	for _, n := range nodes {
		if n.ID == from.ID {
			continue
		}
		l.add(n, c.hop+1)
	}
}

// OnFailure records that the node at addr did not answer in time.
func (l *Lookup) OnFailure(addr netip.AddrPort) {
	c, ok := l.byAddr[addr]
	if !ok || c.state != candInFlight {
		return
	}
	l.inFlight--
	c.state = candFailed
}

// InFlight returns the number of queries awaiting an answer.
func (l *Lookup) InFlight() int { return l.inFlight }

// Done reports whether the lookup has converged: the k closest live nodes
// have answered, or there is nobody left to ask.
func (l *Lookup) Done() bool {
	for _, c := range l.anon {
		if c.state == candNew || c.state == candInFlight {
			return false
		}
	}
	seen := 0
	for _, c := range l.cands {
		if seen >= l.k {
			break
		}
		if c.state == candFailed {
			continue
		}
		seen++
		if c.state != candReplied {
			return false
		}
	}
	return true
}

// Closest returns up to k nodes that answered, nearest first, with their tokens.
func (l *Lookup) Closest() []Result {
	var out []Result
	for _, c := range l.cands {
		if len(out) == l.k {
			break
		}
		if c.state == candReplied {
			out = append(out, Result{Node: c.info, Token: c.token})
		}
	}
	return out
}
