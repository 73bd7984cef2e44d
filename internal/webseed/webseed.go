// Package webseed downloads torrent pieces from HTTP servers (BEP 19,
// "url-list" web seeds).
//
// A Client holds the torrent's web seed URLs (mirrors). FetchPiece maps a
// piece to per-file byte ranges and fetches them with ranged GETs from one
// mirror. The caller verifies the piece hash like any peer data and calls
// Penalize when it fails.
//
// URL layout (BEP 19):
//
//	single-file torrent: the URL is the file itself; a URL ending in "/"
//	                     gets the torrent name appended.
//	multi-file torrent:  URL + "/" (added when missing) + name + "/" + path
//	                     components, each component URL-escaped.
//
// Responses: 206 Partial Content is expected, and its Content-Range must
// start at the requested offset (a total length, when given, must match the
// file's). A 200 OK means the server ignored Range and sends the whole file:
// it is accepted only when the requested range starts within
// Config.MaxDiscard bytes of the file start (the bytes before it are read and
// discarded); otherwise it is an error and the mirror is backed off. Bodies
// are never read past the requested length.
//
// Mirror choice: every mirror keeps an EWMA of its throughput and of its
// latency to the first response byte. A fetch goes to the usable mirror (not
// backed off, below its concurrency limit) with the smallest expected time
// for the piece (latency + size/throughput); mirrors never measured are tried
// first, and with probability Config.Explore a random usable mirror is tried
// so a mirror that got faster is noticed. A failing mirror is backed off
// exponentially (MinBackoff doubling up to MaxBackoff); a 429 or 503 with
// Retry-After is backed off for that long (capped at MaxBackoff).
//
// A Client is safe for concurrent use.
package webseed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxPerMirror   = 4
	DefaultMinBackoff     = 2 * time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultExplore        = 0.05
	DefaultMaxDiscard     = 4 << 20
	DefaultRequestTimeout = 60 * time.Second
	// MaxMirrors caps how many URLs a Client keeps (a hostile torrent could
	// list millions).
	MaxMirrors = 64
	// ewmaAlpha weights the newest sample of throughput and latency.
	ewmaAlpha = 0.3
)

// Errors returned by FetchPiece (wrapped).
var (
	// ErrNoMirror: every mirror is backed off; see Client.NextReady.
	ErrNoMirror = errors.New("webseed: no usable mirror")
	// ErrBadResponse: a mirror answered something other than the bytes asked for.
	ErrBadResponse = errors.New("webseed: bad response")
)

// Config tunes a Client. Zero values take the defaults above.
type Config struct {
	HTTPClient     *http.Client
	MaxPerMirror   int           // concurrent requests per mirror
	MinBackoff     time.Duration // first backoff after a failure
	MaxBackoff     time.Duration // cap for backoff and Retry-After
	Explore        float64       // probability of trying a random usable mirror; <0 for never
	MaxDiscard     int64         // largest prefix skipped when a server answers 200 to a ranged GET
	RequestTimeout time.Duration // per piece fetch
	UserAgent      string
	Rand           *rand.Rand       // exploration randomness (guarded by Client.mu)
	Now            func() time.Time // clock; time.Now if nil
}

// MirrorStats is a snapshot of one mirror's measurements.
type MirrorStats struct {
	URL          string
	Throughput   float64       // EWMA bytes/second while receiving bodies; 0 = not measured
	Latency      time.Duration // EWMA time to response headers
	Fetches      int           // successful piece fetches
	Failures     int           // consecutive failures (0 after a success)
	BackoffUntil time.Time
	Bytes        int64 // payload bytes received
	InFlight     int
}

type mirror struct {
	url string // as given; static
	// guarded by Client.mu
	st    MirrorStats
	slots int // free request slots
}

// Client fetches pieces from a torrent's web seeds.
type Client struct {
	// static after New
	info *metainfo.Info
	hc   *http.Client
	cfg  Config

	mu      sync.Mutex
	mirrors []*mirror     // guarded by mu (slice static, elements' fields guarded)
	changed chan struct{} // closed and replaced when a slot frees or backoff changes; guarded by mu
}

// New returns a client for the given web seed URLs. URLs that are not
// absolute http(s) URLs are dropped; at most MaxMirrors are kept. It fails
// when no usable URL remains.
func New(info *metainfo.Info, urls []string, cfg Config) (*Client, error) {
	if info == nil {
		return nil, errors.New("webseed: nil info")
	}
	if cfg.MaxPerMirror <= 0 {
		cfg.MaxPerMirror = DefaultMaxPerMirror
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Explore == 0 {
		cfg.Explore = DefaultExplore
	}
	if cfg.MaxDiscard <= 0 {
		cfg.MaxDiscard = DefaultMaxDiscard
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 30 * time.Second
		tr.MaxIdleConnsPerHost = cfg.MaxPerMirror
		hc = &http.Client{Transport: tr}
	}
	c := &Client{info: info, hc: hc, cfg: cfg, changed: make(chan struct{})}
	seen := map[string]bool{}
	for _, u := range urls {
		if len(c.mirrors) >= MaxMirrors {
			break
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || seen[u] {
			continue
		}
		seen[u] = true
		c.mirrors = append(c.mirrors, &mirror{url: u, st: MirrorStats{URL: u}, slots: cfg.MaxPerMirror})
	}
	if len(c.mirrors) == 0 {
		return nil, fmt.Errorf("webseed: no usable http(s) URL in %d given", len(urls))
	}
	return c, nil
}

// FileURL returns the URL of file f of the torrent on the mirror base.
func FileURL(info *metainfo.Info, base string, f int) string {
	if !info.MultiFile {
		if strings.HasSuffix(base, "/") {
			return base + url.PathEscape(info.Name)
		}
		return base
	}
	var b strings.Builder
	b.WriteString(base)
	if !strings.HasSuffix(base, "/") {
		b.WriteByte('/')
	}
	b.WriteString(url.PathEscape(info.Name))
	for _, c := range info.Files[f].Path {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(c))
	}
	return b.String()
}

// Stats returns a snapshot of every mirror.
func (c *Client) Stats() []MirrorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]MirrorStats, len(c.mirrors))
	for i, m := range c.mirrors {
		out[i] = m.st
		out[i].InFlight = c.cfg.MaxPerMirror - m.slots
	}
	return out
}

// Bytes returns the payload bytes received from all mirrors.
func (c *Client) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, m := range c.mirrors {
		n += m.st.Bytes
	}
	return n
}

// NextReady returns when the earliest backed-off mirror becomes usable again
// (a zero time if one is usable now).
func (c *Client) NextReady() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	var next time.Time
	for _, m := range c.mirrors {
		if !m.st.BackoffUntil.After(now) {
			return time.Time{}
		}
		if next.IsZero() || m.st.BackoffUntil.Before(next) {
			next = m.st.BackoffUntil
		}
	}
	return next
}

// Penalize records that data from the mirror failed verification: it is
// backed off like a failed request.
func (c *Client) Penalize(mirrorURL string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.mirrors {
		if m.url == mirrorURL {
			c.failLocked(m, 0)
		}
	}
}

// failLocked counts a failure and backs the mirror off; retryAfter > 0
// overrides the exponential backoff.
func (c *Client) failLocked(m *mirror, retryAfter time.Duration) {
	m.st.Failures++
	d := retryAfter
	if d <= 0 {
		d = c.cfg.MinBackoff << min(m.st.Failures-1, 20)
	}
	d = min(d, c.cfg.MaxBackoff)
	m.st.BackoffUntil = c.cfg.Now().Add(d)
	c.signalLocked()
}

func (c *Client) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// expected returns the expected seconds to fetch n bytes from m; 0 for an
// unmeasured mirror (tried first).
func expected(st *MirrorStats, n int64) float64 {
	if st.Fetches == 0 || st.Throughput <= 0 {
		return 0
	}
	return st.Latency.Seconds() + float64(n)/st.Throughput
}

// chooseLocked picks a usable mirror with a free slot for a fetch of n
// bytes, or returns nil. exclude holds mirrors already tried for this piece.
func (c *Client) chooseLocked(n int64, exclude map[*mirror]bool) *mirror {
	now := c.cfg.Now()
	var usable []*mirror
	var best *mirror
	bestCost := 0.0
	for _, m := range c.mirrors {
		if m.slots <= 0 || exclude[m] || m.st.BackoffUntil.After(now) {
			continue
		}
		usable = append(usable, m)
		cost := expected(&m.st, n)
		if best == nil || cost < bestCost {
			best, bestCost = m, cost
		}
	}
	if len(usable) > 1 && c.cfg.Explore > 0 && c.cfg.Rand.Float64() < c.cfg.Explore {
		return usable[c.cfg.Rand.IntN(len(usable))]
	}
	return best
}

// allBackedOffLocked reports whether no mirror outside exclude could be used
// even once a slot frees.
func (c *Client) allBackedOffLocked(exclude map[*mirror]bool) bool {
	now := c.cfg.Now()
	for _, m := range c.mirrors {
		if !exclude[m] && !m.st.BackoffUntil.After(now) {
			return false
		}
	}
	return true
}

// acquire waits (bounded by ctx) for a usable mirror with a free slot and
// takes the slot. It returns ErrNoMirror when every mirror not in exclude
// is backed off.
func (c *Client) acquire(ctx context.Context, n int64, exclude map[*mirror]bool) (*mirror, error) {
	for {
		c.mu.Lock()
		if m := c.chooseLocked(n, exclude); m != nil {
			m.slots--
			c.mu.Unlock()
			return m, nil
		}
		if c.allBackedOffLocked(exclude) {
			c.mu.Unlock()
			return nil, ErrNoMirror
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Client) releaseSlot(m *mirror) {
	c.mu.Lock()
	m.slots++
	c.signalLocked()
	c.mu.Unlock()
}

// FetchPiece downloads piece into buf (len(buf) >= the piece size) and
// returns the number of bytes written (the piece size) and the mirror URL
// that served it. It tries other mirrors when one fails, at most once each.
// The data is not verified: the caller checks the piece hash and calls
// Penalize(from) on a mismatch.
func (c *Client) FetchPiece(ctx context.Context, piece int, buf []byte) (n int, from string, err error) {
	if piece < 0 || piece >= c.info.NumPieces() {
		return 0, "", fmt.Errorf("webseed: piece %d out of range", piece)
	}
	size := c.info.PieceSize(piece)
	if int64(len(buf)) < size {
		return 0, "", fmt.Errorf("webseed: buffer of %d bytes for piece %d of %d", len(buf), piece, size)
	}
	buf = buf[:size]
	tried := map[*mirror]bool{}
	var lastErr error
	for len(tried) < len(c.mirrors) {
		m, err := c.acquire(ctx, size, tried)
		if err != nil {
			if lastErr != nil && errors.Is(err, ErrNoMirror) {
				err = fmt.Errorf("%w (last error: %v)", err, lastErr)
			}
			return 0, "", fmt.Errorf("webseed: piece %d: %w", piece, err)
		}
		tried[m] = true
		err = c.fetchFrom(ctx, m, piece, buf)
		c.releaseSlot(m)
		if err == nil {
			return int(size), m.url, nil
		}
		if ctx.Err() != nil {
			return 0, "", fmt.Errorf("webseed: piece %d: %w", piece, ctx.Err())
		}
		lastErr = err
	}
	return 0, "", fmt.Errorf("webseed: piece %d: every mirror failed: %w", piece, lastErr)
}
