package dht

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func addrN(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1000+i%50000))
}

func TestBEP42Vectors(t *testing.T) {
	// from BEP 42: only the first 21 bits and the last byte are defined
	tests := []struct {
		ip, id string
	}{
		{"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
		{"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
		{"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
		{"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
		{"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
	}
	for _, tc := range tests {
		var id ID
		b, _ := hex.DecodeString(tc.id)
		copy(id[:], b)
		ip := netip.MustParseAddr(tc.ip)
		if !BEP42Valid(id, ip) {
			t.Errorf("%s: id %s not valid", tc.ip, tc.id)
		}
		bad := id
		bad[0] ^= 0x40
		if BEP42Valid(bad, ip) {
			t.Errorf("%s: altered id accepted", tc.ip)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []string{"1.2.3.4", "2001:db8::7", "203.0.113.9"} {
		ip := netip.MustParseAddr(s)
		if id := BEP42ID(ip, rng); !BEP42Valid(id, ip) {
			t.Errorf("generated id for %s not valid", s)
		}
	}
	if !BEP42Valid(ID{}, netip.MustParseAddr("127.0.0.1")) || !BEP42Valid(ID{}, netip.MustParseAddr("192.168.1.1")) {
		t.Error("local addresses must be exempt")
	}
}

func TestTableInsertAndLiveness(t *testing.T) {
	self := ID{}
	tb := NewTable(self, 2)
	// three nodes in bucket 0 (first bit set)
	a, b, c := ID{0x80, 1}, ID{0x80, 2}, ID{0x80, 3}
	if tb.Seen(a, addrN(1), t0, false) {
		t.Fatal("a node that only queried us entered the table")
	}
	if !tb.Seen(a, addrN(1), t0, true) || !tb.Seen(b, addrN(2), t0, true) {
		t.Fatal("answering nodes not added")
	}
	if tb.Seen(c, addrN(3), t0, true) {
		t.Fatal("full bucket took a third node while both are good")
	}
	if tb.WantsNode(ID{0x80, 9}, t0) {
		t.Fatal("full bucket of good nodes wants more")
	}
	n, _ := tb.Get(a)
	if n.Liveness(t0.Add(GoodFor-time.Second)) != Good || n.Liveness(t0.Add(GoodFor)) != Questionable {
		t.Fatal("liveness by age wrong")
	}
	// a query from a node that has answered before keeps it good
	tb.Seen(a, addrN(1), t0.Add(GoodFor), false)
	n, _ = tb.Get(a)
	if n.Liveness(t0.Add(GoodFor+time.Minute)) != Good {
		t.Fatal("recent query from an answering node should keep it good")
	}
	now := t0.Add(20 * time.Minute)
	if q := tb.Questionable(now, 10); len(q) != 1 || q[0].ID != b {
		t.Fatalf("questionable = %v, want b", q)
	}
	// b misses two queries: bad, replaced by c from the replacement cache
	tb.Failed(b, addrN(2), now)
	if _, ok := tb.Get(b); !ok {
		t.Fatal("one failure must not evict")
	}
	tb.Failed(b, addrN(2), now)
	if _, ok := tb.Get(b); ok {
		t.Fatal("bad node kept although a replacement exists")
	}
	if _, ok := tb.Get(c); !ok {
		t.Fatal("replacement not promoted")
	}
	// an id at a new address is not moved while the old entry is alive
	tb.Seen(c, addrN(99), now, true)
	if n, _ := tb.Get(c); n.Addr != addrN(3) {
		t.Fatal("live node's address was hijacked")
	}
	// Accept filters
	tb.Accept = func(id ID, addr netip.AddrPort) bool { return id[1] != 7 }
	if tb.Seen(ID{0x40, 7}, addrN(7), now, true) {
		t.Fatal("Accept ignored")
	}
	if tb.Seen(self, addrN(8), now, true) {
		t.Fatal("own id entered the table")
	}
}

func TestTableClosestMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	self := RandomID(rng)
	tb := NewTable(self, K)
	var all []NodeInfo
	for i := 0; i < 2000; i++ {
		id := RandomID(rng)
		if tb.Seen(id, addrN(i), t0, true) {
			all = append(all, NodeInfo{ID: id, Addr: addrN(i)})
		}
	}
	if tb.Len() != len(all) {
		t.Fatalf("Len %d, inserted %d", tb.Len(), len(all))
	}
	for trial := 0; trial < 50; trial++ {
		target := RandomID(rng)
		if trial%5 == 0 {
			target = randomIDInBucket(self, trial%12, rng)
		}
		got := tb.Closest(target, K, t0, nil)
		want := slices.Clone(all)
		slices.SortFunc(want, func(a, b NodeInfo) int {
			if closer(target, a.ID, b.ID) {
				return -1
			}
			return 1
		})
		want = want[:K]
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: Closest differs from brute force", trial)
		}
	}
}

func TestRefreshTargets(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	self := RandomID(rng)
	tb := NewTable(self, K)
	for i := 0; i < 3; i++ {
		tb.Seen(randomIDInBucket(self, i, rng), addrN(i), t0, true)
	}
	if got := tb.RefreshTargets(t0.Add(time.Minute), rng); len(got) != 1 {
		// bucket 3 (one past the deepest) was never changed; 0..2 are fresh
		t.Fatalf("fresh table wants %d refreshes, want 1", len(got))
	}
	later := t0.Add(RefreshAfter + time.Minute)
	got := tb.RefreshTargets(later, rng)
	if len(got) != 4 {
		t.Fatalf("got %d refresh targets, want 4", len(got))
	}
	for i, id := range got {
		if CommonPrefixLen(self, id) != i {
			t.Errorf("target %d has prefix %d", i, CommonPrefixLen(self, id))
		}
	}
	if again := tb.RefreshTargets(later, rng); len(again) != 0 {
		t.Fatalf("refreshed twice in one period: %d", len(again))
	}
}

// network is a pure in-memory set of nodes for lookup tests: every node's
// table is filled from a random sample of the others.
type testNet struct {
	nodes  map[netip.AddrPort]*Table
	dead   map[netip.AddrPort]bool
	ids    []NodeInfo
	served int
}

func (n *testNet) findNode(to NodeInfo, target ID) ([]NodeInfo, bool) {
	if n.dead[to.Addr] {
		return nil, false
	}
	n.served++
	return n.nodes[to.Addr].Closest(target, K, t0, nil), true
}

func TestLookupConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	net := &testNet{nodes: map[netip.AddrPort]*Table{}, dead: map[netip.AddrPort]bool{}}
	for i := 0; i < 300; i++ {
		ni := NodeInfo{ID: RandomID(rng), Addr: addrN(i)}
		net.ids = append(net.ids, ni)
		net.nodes[ni.Addr] = NewTable(ni.ID, K)
	}
	for _, ni := range net.ids {
		for _, j := range rng.Perm(len(net.ids)) {
			o := net.ids[j]
			net.nodes[ni.Addr].Seen(o.ID, o.Addr, t0, true)
		}
	}
	for i := 0; i < 30; i++ {
		net.dead[net.ids[rng.IntN(len(net.ids))].Addr] = true
	}
	for trial := 0; trial < 20; trial++ {
		target := RandomID(rng)
		// seed with one bootstrap address (unknown id) and one known node
		l := NewLookup(target, K, Alpha, []NodeInfo{{Addr: net.ids[0].Addr}, net.ids[1]})
		for steps := 0; !l.Done(); steps++ {
			qs := l.Next()
			if l.InFlight() > Alpha {
				t.Fatalf("%d in flight", l.InFlight())
			}
			if len(qs) == 0 {
				t.Fatal("not done but nothing to send")
			}
			for _, q := range qs {
				nodes, ok := net.findNode(q, target)
				if !ok {
					l.OnFailure(q.Addr)
					continue
				}
				l.OnReply(NodeInfo{ID: net.nodes[q.Addr].Self(), Addr: q.Addr}, nodes, fmt.Sprint("tok", q.Addr))
			}
		}
		var live []NodeInfo
		for _, ni := range net.ids {
			if !net.dead[ni.Addr] {
				live = append(live, ni)
			}
		}
		slices.SortFunc(live, func(a, b NodeInfo) int {
			if closer(target, a.ID, b.ID) {
				return -1
			}
			return 1
		})
		got := l.Closest()
		if len(got) != K {
			t.Fatalf("got %d results", len(got))
		}
		// full buckets hold only k of the nodes they cover, so the exact k
		// closest are not guaranteed; the closest one and most of the rest are
		if got[0].Node != live[0] {
			t.Fatalf("trial %d: closest live node not found", trial)
		}
		inTop := 0
		for i, r := range got {
			if net.dead[r.Node.Addr] {
				t.Fatalf("dead node in results")
			}
			if i > 0 && closer(target, got[i].Node.ID, got[i-1].Node.ID) {
				t.Fatalf("results not sorted")
			}
			if slices.Contains(live[:K], r.Node) {
				inTop++
			}
			if r.Token != fmt.Sprint("tok", r.Node.Addr) {
				t.Fatalf("token lost")
			}
		}
		if inTop < K-2 {
			t.Fatalf("trial %d: only %d of the true %d closest found", trial, inTop, K)
		}
	}
}

func TestLookupIgnoresStrayReplies(t *testing.T) {
	target := ID{1}
	l := NewLookup(target, K, Alpha, []NodeInfo{{ID: ID{2}, Addr: addrN(1)}})
	if l.Done() {
		t.Fatal("done before asking anyone")
	}
	l.OnReply(NodeInfo{ID: ID{3}, Addr: addrN(2)}, []NodeInfo{{ID: ID{1, 1}, Addr: addrN(3)}}, "")
	if qs := l.Next(); len(qs) != 1 || qs[0].Addr != addrN(1) {
		t.Fatalf("stray reply changed the plan: %v", qs)
	}
	l.OnFailure(addrN(1))
	if !l.Done() || len(l.Closest()) != 0 {
		t.Fatal("lookup with only a failed node should be done and empty")
	}
}
