package catalog_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// floodNet is an in-memory network of routers. Node i is FloodPeer(i+1).
// Messages travel through the wire encoding and are delivered in FIFO
// order, so the first copy of a query reaches each node along a shortest
// path (synchronous rounds).
type floodNet struct {
	t       *testing.T
	adj     [][]int
	nodes   []*catalog.FloodRouter
	asked   []int // Local calls per node
	queries int   // query messages sent
	replies int   // reply messages sent
	got     [][]catalog.FloodHit
}

type delivery struct {
	from, to int
	payload  []byte
}

func newFloodNet(t *testing.T, adj [][]int, has map[int]string, cfg func(i int) catalog.FloodConfig) *floodNet {
	n := &floodNet{t: t, adj: adj, asked: make([]int, len(adj)), got: make([][]catalog.FloodHit, len(adj))}
	for i := range adj {
		var c catalog.FloodConfig
		if cfg != nil {
			c = cfg(i)
		}
		var es []catalog.Entry
		if name, ok := has[i]; ok {
			es = append(es, catalog.Entry{InfoHash: metainfo.Hash{byte(i + 1)}, Name: name, Size: int64(i)})
		}
		c.Local = func(q string, limit int) []catalog.FloodHit {
			n.asked[i]++
			return catalog.MatchLocal(q, es, limit)
		}
		n.nodes = append(n.nodes, catalog.NewFloodRouter(c))
	}
	return n
}

func (n *floodNet) peers(i int) []catalog.FloodPeer {
	var ps []catalog.FloodPeer
	for _, j := range n.adj[i] {
		ps = append(ps, catalog.FloodPeer(j+1))
	}
	return ps
}

// search floods q from node origin and delivers every message.
func (n *floodNet) search(origin int, q string, ttl int, id uint64) {
	n.t.Helper()
	idb := binary.BigEndian.AppendUint64(nil, id)
	var queue []delivery
	send := func(from int, outs []catalog.FloodOut) {
		for _, o := range outs {
			b, err := catalog.MarshalFlood(o.Msg)
			if err != nil {
				n.t.Fatal(err)
			}
			to := int(o.To) - 1
			if !slices.Contains(n.adj[from], to) {
				n.t.Fatalf("node %d sent to %d, not a neighbour", from, to)
			}
			if o.Msg.IsQuery() {
				n.queries++
			} else {
				n.replies++
			}
			queue = append(queue, delivery{from, to, b})
		}
	}
	send(origin, n.nodes[origin].Start(string(idb), q, ttl, n.peers(origin)))
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 100000 {
			n.t.Fatal("flood does not end")
		}
		d := queue[0]
		queue = queue[1:]
		m, err := catalog.ParseFlood(d.payload)
		if err != nil {
			n.t.Fatalf("node %d got a bad message from %d: %v", d.to, d.from, err)
		}
		outs, mine := n.nodes[d.to].Receive(catalog.FloodPeer(d.from+1), m, n.peers(d.to))
		n.got[d.to] = append(n.got[d.to], mine...)
		send(d.to, outs)
	}
}

func hitNames(hs []catalog.FloodHit) []string {
	var s []string
	for _, h := range hs {
		s = append(s, h.Name)
	}
	slices.Sort(s)
	return s
}

func ring(n int) [][]int {
	adj := make([][]int, n)
	for i := range adj {
		adj[i] = []int{(i + 1) % n, (i + n - 1) % n}
	}
	return adj
}

// TestFloodRing: on a ring of 20, a query with TTL 3 travels exactly 3 hops
// each way (2*TTL query messages), finds the items within reach and not the
// one beyond, and the replies come back hop by hop.
func TestFloodRing(t *testing.T) {
	has := map[int]string{2: "Night.of.the.Living.Dead.1968", 18: "living_dead_soundtrack", 5: "Living Dead (far away)"}
	n := newFloodNet(t, ring(20), has, nil)
	n.search(0, "LIVING dead", 3, 1)
	if n.queries != 6 {
		t.Errorf("query messages %d, want 2*TTL = 6", n.queries)
	}
	if n.replies != 4 { // two hits, each 2 hops back
		t.Errorf("reply messages %d, want 4", n.replies)
	}
	want := []string{"Night.of.the.Living.Dead.1968", "living_dead_soundtrack"}
	if got := hitNames(n.got[0]); !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	for i, a := range n.asked {
		reached := i == 1 || i == 2 || i == 3 || i == 17 || i == 18 || i == 19
		if (a == 1) != reached || a > 1 {
			t.Errorf("node %d asked %d times (reached: %v)", i, a, reached)
		}
	}
	for i := 1; i < 20; i++ {
		if len(n.got[i]) != 0 {
			t.Errorf("node %d kept results of a query it did not start", i)
		}
	}
}

// TestFloodMesh: 20 peers, each linked to 4 random others (cycles
// everywhere). For TTL 1 to 5 the query reaches exactly the peers within
// TTL hops, each answers once, each forwards once, the message count is
// deg(origin) + Σ(deg(v)-1) over reached peers closer than TTL, and every
// other copy is dropped as a duplicate.
func TestFloodMesh(t *testing.T) {
	const N = 20
	rng := rand.New(rand.NewPCG(1, 2))
	adj := make([][]int, N)
	link := func(a, b int) {
		if a != b && !slices.Contains(adj[a], b) {
			adj[a] = append(adj[a], b)
			adj[b] = append(adj[b], a)
		}
	}
	for i := range N {
		link(i, (i+1)%N) // connected
		for range 2 {
			link(i, rng.IntN(N))
		}
	}
	has := map[int]string{}
	for i := range N {
		if i%3 == 0 {
			has[i] = fmt.Sprintf("shared.movie.part%02d.mkv", i)
		}
	}
	for ttl := 1; ttl <= 5; ttl++ {
		t.Run(fmt.Sprintf("ttl%d", ttl), func(t *testing.T) {
			origin := 7
			n := newFloodNet(t, adj, has, nil)
			n.search(origin, "movie part", ttl, uint64(ttl))
			dist := bfs(adj, origin)
			wantMsgs := len(adj[origin])
			var wantHits []string
			reached := 0
			for v, d := range dist {
				if v == origin || d < 0 || d > ttl {
					continue
				}
				reached++
				if d < ttl {
					wantMsgs += len(adj[v]) - 1
				}
				if name, ok := has[v]; ok {
					wantHits = append(wantHits, name)
				}
			}
			slices.Sort(wantHits)
			if n.queries != wantMsgs {
				t.Errorf("query messages %d, want %d", n.queries, wantMsgs)
			}
			if got := hitNames(n.got[origin]); !slices.Equal(got, wantHits) {
				t.Errorf("results %v, want %v", got, wantHits)
			}
			dups := 0
			for v, r := range n.nodes {
				within := v != origin && dist[v] >= 0 && dist[v] <= ttl
				if (n.asked[v] == 1) != within || n.asked[v] > 1 {
					t.Errorf("node %d (distance %d) answered %d times", v, dist[v], n.asked[v])
				}
				dups += r.Stats().Duplicates
			}
			// Every query message but the first to reach each node is a duplicate
			// (the origin counts its own echoes as duplicates too).
			if want := n.queries - reached; dups != want {
				t.Errorf("duplicates dropped %d, want %d", dups, want)
			}
		})
	}
}

func bfs(adj [][]int, from int) []int {
	dist := make([]int, len(adj))
	for i := range dist {
		dist[i] = -1
	}
	dist[from] = 0
	q := []int{from}
	for len(q) > 0 {
		v := q[0]
		q = q[1:]
		for _, w := range adj[v] {
			if dist[w] < 0 {
				dist[w] = dist[v] + 1
				q = append(q, w)
			}
		}
	}
	return dist
}

// TestFloodPrivacy: a peer that refuses to forward cuts the flood on its
// side; a peer that refuses to answer still forwards.
func TestFloodPrivacy(t *testing.T) {
	has := map[int]string{2: "secret plans", 19: "secret diary", 18: "secret garden"}
	n := newFloodNet(t, ring(20), has, func(i int) catalog.FloodConfig {
		return catalog.FloodConfig{NoForward: i == 1, NoAnswer: i == 19}
	})
	n.search(0, "secret", 3, 9)
	if got, want := hitNames(n.got[0]), []string{"secret garden"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if n.asked[2] != 0 || n.asked[19] != 0 {
		t.Errorf("node 2 asked %d (behind a non-forwarder), node 19 asked %d (refuses to answer)", n.asked[2], n.asked[19])
	}
	if n.queries != 4 { // 0→1, 0→19, 19→18, 18→17
		t.Errorf("query messages %d, want 4", n.queries)
	}
}

// TestFloodSeenBounded: the id cache keeps at most Seen ids; replies to a
// forgotten query are dropped, duplicates of a remembered one too.
func TestFloodSeenBounded(t *testing.T) {
	r := catalog.NewFloodRouter(catalog.FloodConfig{Seen: 4})
	id := func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	for i := range 10 {
		r.Start(id(i), "x", 3, []catalog.FloodPeer{1})
	}
	hit := catalog.FloodHit{InfoHash: make([]byte, 20), Name: "x", Size: 1, Files: 1}
	if _, mine := r.Receive(1, catalog.FloodMsg{ID: id(0), Hits: []catalog.FloodHit{hit}}, nil); mine != nil {
		t.Error("reply to a forgotten query delivered")
	}
	if _, mine := r.Receive(1, catalog.FloodMsg{ID: id(9), Hits: []catalog.FloodHit{hit}}, nil); len(mine) != 1 {
		t.Error("reply to a remembered query lost")
	}
	out, _ := r.Receive(1, catalog.FloodMsg{ID: id(8), Q: "x", TTL: 3}, []catalog.FloodPeer{1, 2})
	if out != nil {
		t.Errorf("our own query echoed back was handled again: %+v", out)
	}
	if st := r.Stats(); st.Unroutable != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseFlood(t *testing.T) {
	ih := string(make([]byte, 20))
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"query", "d2:id8:abcdefgh1:q5:hello3:ttli3ee", true},
		{"reply", "d2:id8:abcdefgh1:rld1:fi1e2:ih20:" + ih + "1:n1:x1:si5eeee", true},
		{"short id", "d2:id3:abc1:q5:hello3:ttli3ee", false},
		{"no ttl", "d2:id8:abcdefgh1:q5:helloe", false},
		{"empty", "d2:id8:abcdefghe", false},
		{"bad hash", "d2:id8:abcdefgh1:rld1:fi1e2:ih3:abc1:n1:x1:si5eeee", false},
		{"negative size", "d2:id8:abcdefgh1:rld1:fi1e2:ih20:" + ih + "1:n1:x1:si-5eeee", false},
		{"not a dict", "li1ee", false},
		{"truncated", "d2:id8:abcd", false},
	} {
		_, err := catalog.ParseFlood([]byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
	m, err := catalog.ParseFlood([]byte("d2:id8:abcdefgh1:q1:x3:ttli99ee"))
	if err != nil || m.TTL != catalog.MaxFloodTTL {
		t.Errorf("ttl 99 → %d, %v; want clamped to %d", m.TTL, err, catalog.MaxFloodTTL)
	}
}

func FuzzParseFlood(f *testing.F) {
	f.Add([]byte("d2:id8:abcdefgh1:q5:hello3:ttli3ee"))
	f.Add([]byte("d2:id8:abcdefgh1:rld1:fi1e2:ih20:aaaaaaaaaaaaaaaaaaaa1:n1:x1:si5eeee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := catalog.ParseFlood(b)
		if err != nil {
			return
		}
		out, err := catalog.MarshalFlood(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := catalog.ParseFlood(out)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if m2.ID != m.ID || m2.Q != m.Q || m2.TTL != m.TTL || len(m2.Hits) != len(m.Hits) {
			t.Fatalf("round trip changed the message")
		}
	})
}

// TestFloodReplyFits: a reply with many long names is cut to fit one message.
func TestFloodReplyFits(t *testing.T) {
	var es []catalog.Entry
	for i := range 60 {
		es = append(es, catalog.Entry{InfoHash: metainfo.Hash{byte(i)}, Name: fmt.Sprintf("match %02d %0900d", i, 0), Size: 1})
	}
	r := catalog.NewFloodRouter(catalog.FloodConfig{Local: func(q string, limit int) []catalog.FloodHit {
		return catalog.MatchLocal(q, es, limit)
	}})
	out, _ := r.Receive(1, catalog.FloodMsg{ID: "abcdefgh", Q: "match", TTL: 1}, []catalog.FloodPeer{1})
	if len(out) != 1 || len(out[0].Msg.Hits) == 0 {
		t.Fatalf("no reply: %+v", out)
	}
	b, err := catalog.MarshalFlood(out[0].Msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > catalog.MaxFloodMsgLen {
		t.Fatalf("reply of %d bytes exceeds %d", len(b), catalog.MaxFloodMsgLen)
	}
	if _, err := catalog.ParseFlood(b); err != nil {
		t.Fatal(err)
	}
}
