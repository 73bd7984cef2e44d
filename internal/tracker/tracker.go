// Package tracker is shoal's client side of BitTorrent trackers: HTTP(S)
// announce (BEP 3) with compact peers (BEP 23), the dictionary peer form and
// peers6 (BEP 7); UDP trackers (BEP 15, with the BEP 41 URL-data option);
// scrape over both (BEP 48 URL convention for HTTP); and BEP 12
// multitracker tiers.
//
// Everything read from a tracker is bounded: HTTP bodies are capped at
// MaxBodySize, peer lists at MaxPeers, and every request has a deadline even
// when the caller's context has none.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits and timings. They are deliberately short: shoal is often a CLI and
// a tracker that does not answer within a few seconds is skipped for the
// next one in its tier.
const (
	// MaxBodySize caps an HTTP tracker response body; larger is an error.
	MaxBodySize = 2 << 20
	// MaxPeers caps the peers taken from one response; extra are dropped.
	MaxPeers = 2000
	// HTTPTimeout bounds one HTTP announce or scrape (including redirects).
	HTTPTimeout = 15 * time.Second
	// MaxRedirects is the most redirects the default HTTP client follows.
	MaxRedirects = 3

	// UDPTries is how many times one UDP request is sent before giving up.
	// BEP 15 asks for 15·2^n s retries up to n=8 (about an hour); we use a
	// CLI-friendly schedule: UDPTries tries of UDPTryTimeout each.
	UDPTries = 2
	// UDPTryTimeout is how long one UDP try waits for its reply.
	UDPTryTimeout = 3 * time.Second
	// UDPConnIDTTL is how long a UDP connection id is reused (BEP 15: 1 min).
	UDPConnIDTTL = 60 * time.Second

	// MinAnnounceInterval and MaxAnnounceInterval clamp a tracker's interval.
	MinAnnounceInterval = 30 * time.Second
	MaxAnnounceInterval = 2 * time.Hour
	// DefaultAnnounceInterval is used when a tracker sends none (or ≤ 0).
	DefaultAnnounceInterval = 30 * time.Minute
)

// Event is the announce event (BEP 3).
type Event int

// Announce events.
const (
	None Event = iota
	Started
	Completed
	Stopped
)

// String returns the event as sent to HTTP trackers ("" for None).
func (e Event) String() string {
	switch e {
	case Started:
		return "started"
	case Completed:
		return "completed"
	case Stopped:
		return "stopped"
	}
	return ""
}

// udpCode is the event's number in BEP 15 (which orders them differently).
func (e Event) udpCode() uint32 {
	switch e {
	case Completed:
		return 1
	case Started:
		return 2
	case Stopped:
		return 3
	}
	return 0
}

// AnnounceRequest is what we tell a tracker about ourselves and one torrent.
type AnnounceRequest struct {
	InfoHash, PeerID [20]byte
	Port             uint16
	// Negative Uploaded/Downloaded are sent as 0. A negative Left means
	// "unknown" (magnet before metadata) and is sent as UnknownLeft so the
	// tracker treats us as a leecher.
	Uploaded, Downloaded, Left int64
	Event                      Event
	NumWant                    int // -1 = tracker default
	Key                        uint32
	IP                         netip.Addr // optional, usually zero
}

// UnknownLeft is sent as "left" when AnnounceRequest.Left is negative.
const UnknownLeft = 16 << 10

func (r *AnnounceRequest) counters() (up, down, left int64) {
	up, down, left = max(r.Uploaded, 0), max(r.Downloaded, 0), r.Left
	if left < 0 {
		left = UnknownLeft
	}
	return up, down, left
}

// AnnounceResponse is a tracker's answer, already sanitised: intervals
// clamped, peers capped at MaxPeers, de-duplicated, without port 0 or
// unspecified addresses, IPv4-mapped IPv6 addresses unmapped.
type AnnounceResponse struct {
	// Interval is clamped to [MinAnnounceInterval, MaxAnnounceInterval]
	// (DefaultAnnounceInterval when absent) and is never below MinInterval.
	Interval time.Duration
	// MinInterval is the tracker's "min interval" (0 when not given),
	// clamped to MaxAnnounceInterval.
	MinInterval       time.Duration
	Peers             []netip.AddrPort // v4 and v6 together
	Seeders, Leechers int              // -1 if unknown
	Warning           string
	TrackerID         string
	// ExternalIP is the address the tracker saw us at (BEP 24), if sent.
	ExternalIP netip.Addr
}

// ScrapeResult is a tracker's counts for one torrent. A count the tracker
// did not send is -1.
type ScrapeResult struct{ Seeders, Leechers, Completed int }

// FailureError is a tracker's explicit refusal ("failure reason" in HTTP,
// action 3 in UDP).
type FailureError struct{ Reason string }

func (e *FailureError) Error() string { return "tracker failure: " + e.Reason }

// Errors callers may test with errors.Is.
var (
	ErrUnsupportedScheme = errors.New("tracker: unsupported URL scheme")
	ErrScrapeUnsupported = errors.New("tracker: scrape not supported for this announce URL")
	ErrNoTrackers        = errors.New("tracker: no usable trackers")
)

// Client talks to trackers. The zero value is ready to use; a Client is safe
// for concurrent use and must not be copied after first use.
type Client struct {
	// HTTP is used for http(s) trackers; nil means a shared default with
	// sane timeouts, at most MaxRedirects redirects and no proxy from the
	// environment. Static after first use.
	HTTP *http.Client
	// UserAgent is sent to HTTP trackers; empty means DefaultUserAgent.
	// Static after first use.
	UserAgent string

	mu      sync.Mutex
	connIDs map[netip.AddrPort]connIDEntry // UDP connection ids; guarded by mu
	// now is the clock and tryTimeout overrides UDPTryTimeout (tests set
	// them); static after construction.
	now        func() time.Time
	tryTimeout time.Duration
}

type connIDEntry struct {
	id      uint64
	expires time.Time
}

func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Announce announces to one tracker, choosing HTTP or UDP by the URL scheme.
// The request is bounded by ctx and by a per-request default timeout.
func (c *Client) Announce(ctx context.Context, announceURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	u, err := url.Parse(announceURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: parse announce URL: %w", err)
	}
	var resp *AnnounceResponse
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		resp, err = c.httpAnnounce(ctx, u, &req)
	case "udp":
		resp, err = c.udpAnnounce(ctx, u, &req)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", redact(u), err)
	}
	return resp, nil
}

// Scrape asks one tracker for the counts of the given torrents. Hashes the
// tracker does not know are absent from the result. For HTTP trackers the
// scrape URL is derived per BEP 48; ErrScrapeUnsupported is returned when
// the announce URL's last path element does not start with "announce".
func (c *Client) Scrape(ctx context.Context, announceURL string, hashes ...[20]byte) (map[[20]byte]ScrapeResult, error) {
	if len(hashes) == 0 {
		return nil, errors.New("tracker: scrape needs at least one info-hash")
	}
	u, err := url.Parse(announceURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: parse announce URL: %w", err)
	}
	var res map[[20]byte]ScrapeResult
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		res, err = c.httpScrape(ctx, u, hashes)
	case "udp":
		res, err = c.udpScrape(ctx, u, hashes)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", redact(u), err)
	}
	return res, nil
}

// redact renders a tracker URL for errors and logs without its query or
// user info (private trackers put passkeys there).
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.RawQuery != "" {
		r.RawQuery = "…"
	}
	return r.String()
}

// clampIntervals applies the interval policy documented on AnnounceResponse.
func clampIntervals(interval, minInterval int64) (time.Duration, time.Duration) {
	const maxSec = int64(MaxAnnounceInterval / time.Second)
	iv := DefaultAnnounceInterval
	if interval > 0 {
		iv = time.Duration(min(interval, maxSec)) * time.Second
		iv = max(iv, MinAnnounceInterval)
	}
	var mi time.Duration
	if minInterval > 0 {
		mi = time.Duration(min(minInterval, maxSec)) * time.Second
	}
	return max(iv, mi), mi
}

// withTimeout bounds ctx by d unless it already ends sooner.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
