// Package server is shoal's BitTorrent tracker: HTTP announce and scrape
// (BEP 3, 23, 7, 48) and UDP announce and scrape (BEP 15, 48).
//
// Shape:
//
//	HTTP frontend (http.go) ─┐
//	                         ├─► Tracker (tracker.go): validation, private allow-list,
//	UDP frontend  (udp.go)  ─┘   per-IP rate limit, numwant cap, metrics
//	                                   │
//	                                   ▼
//	                             Store (store.go): MemoryStore | RedisStore
//
// The frontends only translate bytes to AnnounceRequest / scrape calls and
// back; every decision lives in Tracker, every piece of swarm state in a
// Store. Both stores run one conformance suite (conformance_test.go).
//
// Peers are identified by their compact address only (IP and port); peer ids
// are not stored, so the dictionary peer list (compact=0) carries "ip" and
// "port" without "peer id", as with no_peer_id=1.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// InfoHash is a v1 (SHA-1, 20-byte) info-hash, or the truncated v2 hash that
// BEP 52 clients announce with.
type InfoHash [20]byte

// String returns the hash in lower-case hex.
func (h InfoHash) String() string { return fmt.Sprintf("%x", h[:]) }

// Event is an announce event. The numeric values are BEP 15's.
type Event uint8

// Announce events.
const (
	EventNone      Event = 0
	EventCompleted Event = 1
	EventStarted   Event = 2
	EventStopped   Event = 3
)

// String names the event as BEP 3 spells it ("" for a regular announce).
func (e Event) String() string {
	switch e {
	case EventCompleted:
		return "completed"
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	}
	return ""
}

// AnnounceRequest is one validated-by-frontend announce. Addr is the
// address the peer is reachable at: the request's source IP and the port
// the client asked for.
type AnnounceRequest struct {
	InfoHash   InfoHash
	Addr       netip.AddrPort
	Event      Event
	Uploaded   int64
	Downloaded int64
	Left       int64
	// NumWant is the number of peers asked for; negative means "default".
	NumWant int
}

// AnnounceResponse is the answer to an announce.
type AnnounceResponse struct {
	Interval    time.Duration
	MinInterval time.Duration
	Stats       SwarmStats
	// Peers holds compact peers of the announcer's address family:
	// 6 bytes each (IPv4 + port) or 18 bytes each (IPv6 + port).
	Peers []byte
	// IPv6 says which family Peers holds.
	IPv6 bool
}

// SwarmStats are the counts of one torrent (BEP 48 scrape fields).
type SwarmStats struct {
	Seeders    uint32 // "complete"
	Leechers   uint32 // "incomplete"
	Downloaded uint32 // "downloaded": completed events seen
}

// PeerAnnounce is what a Store records for one announce.
type PeerAnnounce struct {
	InfoHash InfoHash
	Addr     netip.AddrPort // unmapped; IPv4 or IPv6
	Seeder   bool
	Event    Event
	// TTL is how long the peer stays listed without announcing again.
	TTL time.Duration
	// NumWant is how many peers to return (already capped, >= 0).
	NumWant int
}

// StoreStats are totals over every tracked torrent, for /metrics.
type StoreStats struct {
	Torrents, Seeders, Leechers int
}

// Store is the swarm state. Implementations are safe for concurrent use.
// Time is passed in so that tests control it.
type Store interface {
	// Announce records (or, for EventStopped, removes) the peer and returns
	// the swarm's counts after the change, plus up to a.NumWant other live
	// peers of a.Addr's family appended to dst in compact form (6 or 18
	// bytes each). A seeder is given only leechers.
	Announce(ctx context.Context, a PeerAnnounce, now time.Time, dst []byte) (SwarmStats, []byte, error)
	// Scrape appends one SwarmStats per hash (zeros for unknown torrents).
	Scrape(ctx context.Context, hashes []InfoHash, now time.Time, dst []SwarmStats) ([]SwarmStats, error)
	// Collect removes peers whose TTL has passed (and empty torrents).
	Collect(ctx context.Context, now time.Time) error
	// Stats returns totals for monitoring.
	Stats(ctx context.Context, now time.Time) (StoreStats, error)
	// Close releases the store's resources.
	Close() error
}

// SecretSharer is an optional Store ability: a secret shared by every
// tracker instance using the same store, used to key UDP connection ids so
// that several instances behind one address accept each other's ids.
type SecretSharer interface {
	SharedSecret(ctx context.Context) ([]byte, error)
}

// Failure is a refusal the client is told about ("failure reason" over
// HTTP, an error packet over UDP). Kind feeds the errors metric.
type Failure struct {
	Kind   ErrKind
	Reason string
}

func (f *Failure) Error() string { return f.Reason }

func failf(kind ErrKind, format string, a ...any) *Failure {
	return &Failure{Kind: kind, Reason: fmt.Sprintf(format, a...)}
}

// AsFailure returns err as a *Failure; any other error becomes a generic
// internal failure so that no internal detail leaks to clients.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Kind: ErrInternal, Reason: "internal tracker error"}
}

// compactLen is the size of one compact peer of the given family.
func compactLen(v6 bool) int {
	if v6 {
		return 18
	}
	return 6
}

// appendCompact appends a's compact form: IP bytes then big-endian port.
func appendCompact(dst []byte, a netip.AddrPort) []byte {
	ip := a.Addr()
	if ip.Is4() {
		b := ip.As4()
		dst = append(dst, b[:]...)
	} else {
		b := ip.As16()
		dst = append(dst, b[:]...)
	}
	return append(dst, byte(a.Port()>>8), byte(a.Port()))
}
