package server

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Proto names the frontend a request came through.
type Proto uint8

// Frontends.
const (
	ProtoHTTP Proto = iota
	ProtoUDP
	numProtos
)

var protoNames = [numProtos]string{"http", "udp"}

// ErrKind classifies refusals for the errors metric.
type ErrKind uint8

// Error kinds.
const (
	ErrMalformed    ErrKind = iota // unparsable or invalid request
	ErrNotAllowed                  // info-hash not on the private allow list
	ErrRateLimited                 // client over its per-IP rate
	ErrConnectionID                // UDP: bad or expired connection id
	ErrInternal                    // store failure
	numErrKinds
)

var errKindNames = [numErrKinds]string{"malformed", "not_allowed", "rate_limited", "bad_connection_id", "internal"}

// String returns the kind's metric label.
func (k ErrKind) String() string {
	if k < numErrKinds {
		return errKindNames[k]
	}
	return "unknown"
}

// Metrics are the tracker's counters; all fields are atomics.
type Metrics struct {
	announces [numProtos]atomic.Uint64
	scrapes   [numProtos]atomic.Uint64
	connects  atomic.Uint64
	errors    [numErrKinds]atomic.Uint64
	dropped   atomic.Uint64 // UDP packets dropped without answer
}

// Announces returns the announce count for one frontend.
func (m *Metrics) Announces(p Proto) uint64 { return m.announces[p].Load() }

// Scrapes returns the scrape count for one frontend.
func (m *Metrics) Scrapes(p Proto) uint64 { return m.scrapes[p].Load() }

// Errors returns the refusal count of one kind.
func (m *Metrics) Errors(k ErrKind) uint64 { return m.errors[k].Load() }

// Dropped returns the count of UDP packets dropped unanswered.
func (m *Metrics) Dropped() uint64 { return m.dropped.Load() }

// WritePrometheus writes the metrics in the Prometheus text format
// (version 0.0.4). Written by hand: a handful of counters does not need
// the client library and its dependency tree.
func (t *Tracker) WritePrometheus(ctx context.Context, w io.Writer) error {
	m := t.metrics
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# HELP shoal_tracker_announces_total Announce requests received.\n# TYPE shoal_tracker_announces_total counter\n")
	for i, n := range protoNames {
		p("shoal_tracker_announces_total{proto=%q} %d\n", n, m.announces[i].Load())
	}
	p("# HELP shoal_tracker_scrapes_total Scrape requests received.\n# TYPE shoal_tracker_scrapes_total counter\n")
	for i, n := range protoNames {
		p("shoal_tracker_scrapes_total{proto=%q} %d\n", n, m.scrapes[i].Load())
	}
	p("# HELP shoal_tracker_udp_connects_total UDP connect requests answered.\n# TYPE shoal_tracker_udp_connects_total counter\n")
	p("shoal_tracker_udp_connects_total %d\n", m.connects.Load())
	p("# HELP shoal_tracker_errors_total Requests refused, by kind.\n# TYPE shoal_tracker_errors_total counter\n")
	for i, n := range errKindNames {
		p("shoal_tracker_errors_total{kind=%q} %d\n", n, m.errors[i].Load())
	}
	p("# HELP shoal_tracker_udp_dropped_total UDP packets dropped without an answer.\n# TYPE shoal_tracker_udp_dropped_total counter\n")
	p("shoal_tracker_udp_dropped_total %d\n", m.dropped.Load())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := t.store.Stats(ctx, t.cfg.Now())
	if err != nil {
		return fmt.Errorf("store stats: %w", err)
	}
	p("# HELP shoal_tracker_torrents Torrents with at least one peer.\n# TYPE shoal_tracker_torrents gauge\n")
	p("shoal_tracker_torrents %d\n", st.Torrents)
	p("# HELP shoal_tracker_peers Peers listed, by role.\n# TYPE shoal_tracker_peers gauge\n")
	p("shoal_tracker_peers{role=\"seeder\"} %d\n", st.Seeders)
	p("shoal_tracker_peers{role=\"leecher\"} %d\n", st.Leechers)
	return nil
}
