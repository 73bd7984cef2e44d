package server

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultInterval    = 30 * time.Minute
	DefaultMinInterval = 5 * time.Minute
	DefaultNumWant     = 50
	DefaultMaxNumWant  = 200
	// MaxScrapeHashes caps the info-hashes of one scrape (as opentracker).
	MaxScrapeHashes = 64
	// maxAllowListEntries caps an --allow file.
	maxAllowListEntries = 10_000_000
)

// Config tunes a Tracker. The zero value of every field means its default.
type Config struct {
	// Interval is the re-announce interval told to clients.
	Interval time.Duration
	// MinInterval is the "min interval" told to clients.
	MinInterval time.Duration
	// PeerTTL is how long a peer stays listed after its last announce;
	// default Interval + Interval/2.
	PeerTTL time.Duration
	// DefaultNumWant is used when the client asks for no number.
	DefaultNumWant int
	// MaxNumWant caps what a client may ask for.
	MaxNumWant int
	// Allow, when non-nil, makes the tracker private: only these hashes
	// are tracked.
	Allow map[InfoHash]struct{}
	// RateLimit is announces+scrapes per second allowed per client IP;
	// 0 disables limiting. RateBurst is the bucket size (default 4x rate,
	// at least 10).
	RateLimit float64
	RateBurst int
	// CollectEvery is how often Run reaps expired peers; default 1 minute.
	CollectEvery time.Duration
	// Logger receives operational logs; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
	// Catalog, when non-nil, is mounted on the HTTP frontend at /search
	// (and /search/...) and /upload: a search directory over the torrents
	// this tracker sees (see internal/catalog.Mux). The tracker itself
	// knows nothing of it.
	Catalog http.Handler
	// OnAnnounce, when non-nil, is called after every accepted announce
	// (HTTP and UDP) with the info-hash, the announcer's address and the
	// swarm's counts after the change. It runs on the request's goroutine,
	// so it must return at once (hand the event to a bounded queue and drop
	// when full); a slow hook slows every announce.
	OnAnnounce func(ih InfoHash, addr netip.AddrPort, seeders, leechers int)
}

// Tracker is the protocol-independent tracker logic shared by the HTTP
// and UDP frontends. Safe for concurrent use.
type Tracker struct {
	cfg     Config // static after construction
	store   Store  // static after construction
	limiter *rateLimiter
	metrics *Metrics
	log     *slog.Logger
}

// New returns a Tracker over store. The caller keeps ownership of store.
func New(store Store, cfg Config) (*Tracker, error) {
	if store == nil {
		return nil, fmt.Errorf("tracker: nil store")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = min(DefaultMinInterval, cfg.Interval)
	}
	if cfg.MinInterval > cfg.Interval {
		return nil, fmt.Errorf("tracker: min interval %v exceeds interval %v", cfg.MinInterval, cfg.Interval)
	}
	if cfg.PeerTTL <= 0 {
		cfg.PeerTTL = cfg.Interval + cfg.Interval/2
	}
	if cfg.MaxNumWant <= 0 {
		cfg.MaxNumWant = DefaultMaxNumWant
	}
	if cfg.DefaultNumWant <= 0 {
		cfg.DefaultNumWant = DefaultNumWant
	}
	cfg.DefaultNumWant = min(cfg.DefaultNumWant, cfg.MaxNumWant)
	if cfg.RateLimit < 0 {
		return nil, fmt.Errorf("tracker: negative rate limit")
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(10, int(4*cfg.RateLimit))
	}
	if cfg.CollectEvery <= 0 {
		cfg.CollectEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tracker{cfg: cfg, store: store, metrics: &Metrics{}, log: cfg.Logger}
	if cfg.RateLimit > 0 {
		t.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	return t, nil
}

// Metrics returns the tracker's counters.
func (t *Tracker) Metrics() *Metrics { return t.metrics }

// Store returns the tracker's store.
func (t *Tracker) Store() Store { return t.store }

// Config returns the effective configuration (defaults filled in).
func (t *Tracker) Config() Config { return t.cfg }

// Allow checks the rate limit for one request from ip.
func (t *Tracker) allow(ip netip.Addr) *Failure {
	if t.limiter != nil && !t.limiter.allow(ip, t.cfg.Now()) {
		return failf(ErrRateLimited, "rate limited: too many requests from %s, slow down", ip)
	}
	return nil
}

// Announce validates req, records it and returns peers. Peers appended to
// dst (may be nil) are returned in the response. Every refusal is a
// *Failure; Announce counts errors in the metrics itself.
func (t *Tracker) Announce(ctx context.Context, req *AnnounceRequest, dst []byte, proto Proto) (AnnounceResponse, error) {
	t.metrics.announces[proto].Add(1)
	resp, err := t.announce(ctx, req, dst)
	if err != nil {
		f := AsFailure(err)
		t.metrics.errors[f.Kind].Add(1)
		if f.Kind == ErrInternal {
			t.log.Error("tracker: announce failed", "err", err)
		}
		return AnnounceResponse{}, f
	}
	return resp, nil
}

func (t *Tracker) announce(ctx context.Context, req *AnnounceRequest, dst []byte) (AnnounceResponse, error) {
	ip := req.Addr.Addr().Unmap()
	if f := t.allow(ip); f != nil {
		return AnnounceResponse{}, f
	}
	if err := t.validate(req); err != nil {
		return AnnounceResponse{}, err
	}
	want := req.NumWant
	if want < 0 {
		want = t.cfg.DefaultNumWant
	}
	want = min(want, t.cfg.MaxNumWant)
	pa := PeerAnnounce{
		InfoHash: req.InfoHash,
		Addr:     netip.AddrPortFrom(ip, req.Addr.Port()),
		Seeder:   req.Left == 0 || req.Event == EventCompleted,
		Event:    req.Event,
		TTL:      t.cfg.PeerTTL,
		NumWant:  want,
	}
	st, peers, err := t.store.Announce(ctx, pa, t.cfg.Now(), dst)
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("store announce: %w", err)
	}
	if t.cfg.OnAnnounce != nil {
		t.cfg.OnAnnounce(pa.InfoHash, pa.Addr, int(st.Seeders), int(st.Leechers))
	}
	return AnnounceResponse{
		Interval:    t.cfg.Interval,
		MinInterval: t.cfg.MinInterval,
		Stats:       st,
		Peers:       peers,
		IPv6:        !ip.Is4(),
	}, nil
}

func (t *Tracker) validate(req *AnnounceRequest) error {
	if !req.Addr.IsValid() {
		return failf(ErrMalformed, "invalid peer address")
	}
	if req.Addr.Port() == 0 {
		return failf(ErrMalformed, "invalid port 0")
	}
	if req.Uploaded < 0 || req.Downloaded < 0 || req.Left < 0 {
		return failf(ErrMalformed, "uploaded, downloaded and left must not be negative")
	}
	if req.Event > EventStopped {
		return failf(ErrMalformed, "unknown event %d", req.Event)
	}
	return t.tracked(req.InfoHash)
}

func (t *Tracker) tracked(h InfoHash) error {
	if t.cfg.Allow == nil {
		return nil
	}
	if _, ok := t.cfg.Allow[h]; !ok {
		return failf(ErrNotAllowed, "info-hash %s is not tracked here (private tracker)", h)
	}
	return nil
}

// Scrape returns the counts of each hash (BEP 48). On a private tracker,
// unlisted hashes read as zeros; more than MaxScrapeHashes is refused.
func (t *Tracker) Scrape(ctx context.Context, from netip.Addr, hashes []InfoHash, proto Proto) ([]SwarmStats, error) {
	t.metrics.scrapes[proto].Add(1)
	st, err := t.scrape(ctx, from, hashes)
	if err != nil {
		f := AsFailure(err)
		t.metrics.errors[f.Kind].Add(1)
		if f.Kind == ErrInternal {
			t.log.Error("tracker: scrape failed", "err", err)
		}
		return nil, f
	}
	return st, nil
}

func (t *Tracker) scrape(ctx context.Context, from netip.Addr, hashes []InfoHash) ([]SwarmStats, error) {
	if f := t.allow(from.Unmap()); f != nil {
		return nil, f
	}
	if len(hashes) == 0 {
		return nil, failf(ErrMalformed, "scrape needs at least one info_hash (full scrapes are not served)")
	}
	if len(hashes) > MaxScrapeHashes {
		return nil, failf(ErrMalformed, "too many info-hashes in one scrape (max %d)", MaxScrapeHashes)
	}
	st, err := t.store.Scrape(ctx, hashes, t.cfg.Now(), make([]SwarmStats, 0, len(hashes)))
	if err != nil {
		return nil, fmt.Errorf("store scrape: %w", err)
	}
	if t.cfg.Allow != nil {
		for i, h := range hashes {
			if t.tracked(h) != nil {
				st[i] = SwarmStats{}
			}
		}
	}
	return st, nil
}

// Run reaps expired peers and idle rate-limit entries every CollectEvery
// until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	tk := time.NewTicker(t.cfg.CollectEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
			now := t.cfg.Now()
			if err := t.store.Collect(ctx, now); err != nil && ctx.Err() == nil {
				t.log.Warn("tracker: collecting expired peers", "err", err)
			}
			if t.limiter != nil {
				t.limiter.collect(now)
			}
		}
	}
}

// ParseAllowList reads one hex info-hash per line; blank lines and lines
// starting with '#' are ignored (opentracker's whitelist format).
func ParseAllowList(r io.Reader) (map[InfoHash]struct{}, error) {
	allow := make(map[InfoHash]struct{})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		var h InfoHash
		if len(s) != 40 {
			return nil, fmt.Errorf("allow list line %d: want 40 hex digits, got %q", line, s)
		}
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return nil, fmt.Errorf("allow list line %d: %w", line, err)
		}
		if len(allow) >= maxAllowListEntries {
			return nil, fmt.Errorf("allow list: more than %d entries", maxAllowListEntries)
		}
		allow[h] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allow list line %d: %w", line+1, err)
	}
	return allow, nil
}
