package catalog

// FloodPeer names one connected peer that speaks shoal_search; the caller
// chooses the values (e.g. a connection id). 0 is reserved for "us".
type FloodPeer uint64

// FloodOut is one message to send.
type FloodOut struct {
	To  FloodPeer
	Msg FloodMsg
}

// FloodConfig configures a FloodRouter.
type FloodConfig struct {
	// Local answers a query from our own torrents (at most limit hits);
	// nil answers nothing.
	Local func(q string, limit int) []FloodHit
	// NoAnswer: never answer others' queries from our torrents.
	NoAnswer bool
	// NoForward: never pass others' queries (or replies to them) on.
	NoForward bool
	// Seen is how many query ids are remembered (default DefaultFloodSeen).
	Seen int
}

// FloodStats are a router's counters.
type FloodStats struct {
	Queries    int // queries received (incl. duplicates)
	Duplicates int // queries dropped as already seen
	Answered   int // queries answered with at least one hit
	Forwarded  int // query messages sent on (not counting our own)
	Replies    int // reply messages received
	Routed     int // replies passed back towards their origin
	Unroutable int // replies for an unknown or forgotten query id
}

// FloodRouter is the pure flood-search logic of one node: messages in,
// messages out, no I/O and no clock. Not safe for concurrent use: one owner
// (a goroutine or a mutex) drives it.
type FloodRouter struct {
	cfg   FloodConfig          // static after construction
	from  map[string]FloodPeer // query id → peer it came from (0 = ours)
	order []string             // ids in arrival order, for eviction (ring)
	next  int                  // ring position of the oldest id
	stats FloodStats
}

// NewFloodRouter returns a router.
func NewFloodRouter(cfg FloodConfig) *FloodRouter {
	if cfg.Seen <= 0 {
		cfg.Seen = DefaultFloodSeen
	}
	return &FloodRouter{cfg: cfg, from: make(map[string]FloodPeer, cfg.Seen)}
}

// Stats returns the counters.
func (r *FloodRouter) Stats() FloodStats { return r.stats }

// remember records id as coming from p, evicting the oldest id when full.
func (r *FloodRouter) remember(id string, p FloodPeer) {
	if len(r.order) < r.cfg.Seen {
		r.order = append(r.order, id)
	} else {
		delete(r.from, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % len(r.order)
	}
	r.from[id] = p
}

// Start originates a query with a fresh id (FloodIDLen random bytes chosen
// by the caller) to every peer in peers. ttl is clamped to [1, MaxFloodTTL].
// Replies to it come out of Receive as mine.
func (r *FloodRouter) Start(id, q string, ttl int, peers []FloodPeer) []FloodOut {
	ttl = min(max(ttl, 1), MaxFloodTTL)
	r.remember(id, 0)
	out := make([]FloodOut, 0, len(peers))
	for _, p := range peers {
		out = append(out, FloodOut{To: p, Msg: FloodMsg{ID: id, Q: q, TTL: ttl}})
	}
	return out
}

// Receive handles a parsed message m from peer from, given the peers now
// connected (from among them or not). It returns the messages to send and,
// for replies to our own queries, the hits they bring.
func (r *FloodRouter) Receive(from FloodPeer, m FloodMsg, peers []FloodPeer) (out []FloodOut, mine []FloodHit) {
	if !m.IsQuery() {
		r.stats.Replies++
		back, ok := r.from[m.ID]
		switch {
		case !ok:
			r.stats.Unroutable++
			return nil, nil
		case back == 0:
			return nil, m.Hits
		case r.cfg.NoForward || back == from:
			return nil, nil
		}
		r.stats.Routed++
		return []FloodOut{{To: back, Msg: m}}, nil
	}
	r.stats.Queries++
	if _, seen := r.from[m.ID]; seen {
		r.stats.Duplicates++
		return nil, nil
	}
	r.remember(m.ID, from)
	if !r.cfg.NoAnswer && r.cfg.Local != nil {
		if hits := fitHits(r.cfg.Local(m.Q, MaxFloodHits)); len(hits) > 0 {
			r.stats.Answered++
			out = append(out, FloodOut{To: from, Msg: FloodMsg{ID: m.ID, Hits: hits}})
		}
	}
	if ttl := min(m.TTL, MaxFloodTTL) - 1; ttl > 0 && !r.cfg.NoForward {
		for _, p := range peers {
			if p != from && p != 0 {
				r.stats.Forwarded++
				out = append(out, FloodOut{To: p, Msg: FloodMsg{ID: m.ID, Q: m.Q, TTL: ttl}})
			}
		}
	}
	return out, nil
}
