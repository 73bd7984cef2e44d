package session

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
)

// FloodOptions tune flood search (Gnutella style, over the BEP 10 extension
// catalog.FloodExtName; the message format is documented in
// internal/catalog/flood.go).
type FloodOptions struct {
	NoAnswer  bool // never answer other peers' queries from our torrents (privacy)
	NoForward bool // never pass other peers' queries on
}

// FloodStats summarise one flood search.
type FloodStats struct {
	Peers   int // shoal peers the query was sent to
	Replies int // reply messages that reached us
}

// floodNode is a Client's side of flood search: it tracks the connected
// peers that speak shoal_search and drives a catalog.FloodRouter. Every
// field after construction is guarded by mu; sends happen after mu is
// released (they only queue on the connection and never block).
type floodNode struct {
	local func() []catalog.Entry // our torrents; static after construction, safe for concurrent use
	log   *slog.Logger           // static after construction

	mu      sync.Mutex
	router  *catalog.FloodRouter
	peers   map[catalog.FloodPeer]func(payload []byte)
	waiting map[string]*floodWait // our queries in flight, by id
	dropped int                   // bad messages received
}

type floodWait struct {
	hits    []catalog.FloodHit
	replies int
}

func newFloodNode(opts FloodOptions, local func() []catalog.Entry, log *slog.Logger) *floodNode {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &floodNode{local: local, log: log, peers: map[catalog.FloodPeer]func([]byte){}, waiting: map[string]*floodWait{}}
	f.router = catalog.NewFloodRouter(catalog.FloodConfig{
		NoAnswer: opts.NoAnswer, NoForward: opts.NoForward,
		Local: func(q string, limit int) []catalog.FloodHit {
			if f.local == nil {
				return nil
			}
			return catalog.MatchLocal(q, f.local(), limit)
		},
	})
	return f
}

// addPeer registers a connection (by its id, never 0) whose extension
// handshake listed shoal_search; send queues one extended message with the
// peer's id for it.
func (f *floodNode) addPeer(id uint64, send func(payload []byte)) {
	f.mu.Lock()
	f.peers[catalog.FloodPeer(id)] = send
	f.mu.Unlock()
}

// removePeer forgets a closed connection.
func (f *floodNode) removePeer(id uint64) {
	f.mu.Lock()
	delete(f.peers, catalog.FloodPeer(id))
	f.mu.Unlock()
}

// peerList returns the connected ids; mu must be held.
func (f *floodNode) peerList() []catalog.FloodPeer {
	ps := make([]catalog.FloodPeer, 0, len(f.peers))
	for p := range f.peers {
		ps = append(ps, p)
	}
	return ps
}

// onMessage handles one shoal_search payload from connection id. A bad
// message is an error (the caller may drop the peer); nothing is sent.
func (f *floodNode) onMessage(id uint64, payload []byte) error {
	m, err := catalog.ParseFlood(payload)
	if err != nil {
		f.mu.Lock()
		f.dropped++
		f.mu.Unlock()
		return err
	}
	f.mu.Lock()
	outs, mine := f.router.Receive(catalog.FloodPeer(id), m, f.peerList())
	if w := f.waiting[m.ID]; w != nil && !m.IsQuery() {
		w.replies++
		w.hits = append(w.hits, mine...)
	}
	sends := f.prepare(outs)
	f.mu.Unlock()
	for _, s := range sends {
		s()
	}
	return nil
}

// prepare encodes outs for peers still connected; mu must be held.
func (f *floodNode) prepare(outs []catalog.FloodOut) []func() {
	var sends []func()
	for _, o := range outs {
		send := f.peers[o.To]
		if send == nil {
			continue
		}
		b, err := catalog.MarshalFlood(o.Msg)
		if err != nil {
			f.log.Warn("flood: encoding", "err", err)
			continue
		}
		sends = append(sends, func() { send(b) })
	}
	return sends
}

// search floods q to the connected shoal peers with ttl and collects
// replies for wait (or until ctx ends), then returns the merged results.
func (f *floodNode) search(ctx context.Context, q string, ttl int, wait time.Duration) ([]catalog.Result, FloodStats, error) {
	if len(q) > catalog.MaxQueryLen || q == "" {
		return nil, FloodStats{}, fmt.Errorf("flood search: query empty or longer than %d bytes", catalog.MaxQueryLen)
	}
	idb := make([]byte, catalog.FloodIDLen)
	rand.Read(idb)
	id := string(idb)
	w := &floodWait{}
	f.mu.Lock()
	peers := f.peerList()
	f.waiting[id] = w
	sends := f.prepare(f.router.Start(id, q, ttl, peers))
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
	}()
	for _, s := range sends {
		s()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := make([]catalog.Result, 0, len(w.hits))
	for _, h := range w.hits {
		rs = append(rs, h.Result())
	}
	return catalog.Merge(rs), FloodStats{Peers: len(peers), Replies: w.replies}, nil
}

// numPeers is how many connected peers speak shoal_search.
func (f *floodNode) numPeers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.peers)
}

// FloodPeers is how many connected peers speak shoal_search right now.
func (c *Client) FloodPeers() int { return c.flood.numPeers() }
