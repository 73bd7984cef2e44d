package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// memFlood is 20 floodNodes in one process joined by in-memory links: each
// node has an inbox drained by its own goroutine, so messages cross between
// goroutines as they do between connections. At node i, the link to node j
// has connection id j+1.
type memFlood struct {
	nodes            []*floodNode
	asked            []atomic.Int32
	queries, replies atomic.Int32
	wg               sync.WaitGroup
}

type memMsg struct {
	from    int
	payload []byte
}

func newMemFlood(t *testing.T, adj [][]int, has map[int]string, opts func(int) FloodOptions) *memFlood {
	ctx, cancel := context.WithCancel(context.Background())
	n := &memFlood{asked: make([]atomic.Int32, len(adj))}
	inboxes := make([]chan memMsg, len(adj))
	for i := range adj {
		inboxes[i] = make(chan memMsg, 4096)
		var es []catalog.Entry
		if name, ok := has[i]; ok {
			es = []catalog.Entry{{InfoHash: metainfo.Hash{byte(i + 1)}, Name: name, Size: int64(100 + i)}}
		}
		var o FloodOptions
		if opts != nil {
			o = opts(i)
		}
		n.nodes = append(n.nodes, newFloodNode(o, func() []catalog.Entry { n.asked[i].Add(1); return es }, nil))
	}
	for i, links := range adj {
		for _, j := range links {
			n.nodes[i].addPeer(uint64(j+1), func(b []byte) {
				if m, err := catalog.ParseFlood(b); err == nil && m.IsQuery() {
					n.queries.Add(1)
				} else {
					n.replies.Add(1)
				}
				select {
				case inboxes[j] <- memMsg{i, b}:
				default:
					t.Errorf("inbox of node %d full", j)
				}
			})
		}
	}
	for i := range adj {
		n.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-inboxes[i]:
					if err := n.nodes[i].onMessage(uint64(m.from+1), m.payload); err != nil {
						t.Errorf("node %d: %v", i, err)
					}
				}
			}
		})
	}
	t.Cleanup(func() { cancel(); n.wg.Wait() })
	return n
}

func names(rs []catalog.Result) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name)
	}
	slices.Sort(s)
	return s
}

// TestFloodNodesRing: 20 nodes in a ring; TTL 3 reaches 3 hops each way:
// exactly 6 query messages, results from the reached nodes only.
func TestFloodNodesRing(t *testing.T) {
	adj := make([][]int, 20)
	for i := range adj {
		adj[i] = []int{(i + 1) % 20, (i + 19) % 20}
	}
	has := map[int]string{3: "Ubuntu 24.04 desktop amd64.iso", 17: "ubuntu-server-24.04.iso", 10: "ubuntu far away"}
	n := newMemFlood(t, adj, has, nil)
	rs, st, err := n.nodes[0].search(context.Background(), "UBUNTU 24.04", catalog.DefaultFloodTTL, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(rs), []string{"Ubuntu 24.04 desktop amd64.iso", "ubuntu-server-24.04.iso"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if q := n.queries.Load(); q != 2*catalog.DefaultFloodTTL {
		t.Errorf("query messages %d, want 2*TTL = %d", q, 2*catalog.DefaultFloodTTL)
	}
	if st.Peers != 2 || st.Replies != 2 || n.replies.Load() != 6 { // each hit 3 hops back
		t.Errorf("stats %+v, reply messages %d", st, n.replies.Load())
	}
	if rs[0].Magnet == "" || rs[0].Size == 0 {
		t.Errorf("result lacks magnet or size: %+v", rs[0])
	}
}

// TestFloodNodesComplete: 20 nodes all linked to each other, TTL 2, with
// concurrent delivery: every node answers exactly once whatever copy reaches
// it first, the query count stays within 19 + 19*18, and all hits arrive.
func TestFloodNodesComplete(t *testing.T) {
	const N = 20
	adj := make([][]int, N)
	has := map[int]string{}
	var want []string
	for i := range N {
		for j := range N {
			if i != j {
				adj[i] = append(adj[i], j)
			}
		}
		if i > 0 && i%2 == 0 {
			has[i] = fmt.Sprintf("Concert.Recording.%02d.flac", i)
			want = append(want, has[i])
		}
	}
	has[5] = "private concert recording"
	n := newMemFlood(t, adj, has, func(i int) FloodOptions { return FloodOptions{NoAnswer: i == 5} })
	rs, _, err := n.nodes[0].search(context.Background(), "concert recording", 2, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := names(rs); !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if q := n.queries.Load(); q < N-1 || q > (N-1)+(N-1)*(N-2) {
		t.Errorf("query messages %d outside [%d, %d]", q, N-1, (N-1)+(N-1)*(N-2))
	}
	for i := 1; i < N; i++ {
		if a := n.asked[i].Load(); i != 5 && a != 1 || i == 5 && a != 0 {
			t.Errorf("node %d consulted its torrents %d times", i, a)
		}
	}
	var dups int
	for _, nd := range n.nodes {
		nd.mu.Lock()
		dups += nd.router.Stats().Duplicates
		nd.mu.Unlock()
	}
	if int(n.queries.Load())-dups != N-1 {
		t.Errorf("%d query messages, %d dropped as duplicates: want exactly one handled per node", n.queries.Load(), dups)
	}
}
