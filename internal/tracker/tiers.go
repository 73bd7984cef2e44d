package tracker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Tiers is a torrent's tracker list in BEP 12 order: tiers tried one after
// another, trackers within a tier in order, a tracker that answers moved to
// the front of its tier. Safe for concurrent use.
type Tiers struct {
	mu    sync.Mutex
	tiers [][]string // guarded by mu; never empty tiers
}

// Supported reports whether a tracker URL has a scheme this package speaks
// (http, https, udp) and a host.
func Supported(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "udp":
		return true
	}
	return false
}

// NewTiers builds the tiers from a torrent's announce-list, falling back to
// announce when the list has no usable URL. Unsupported URLs and duplicates
// (anywhere in the list) are dropped, then each tier is shuffled with rng as
// BEP 12 asks; a nil rng keeps the given order.
func NewTiers(announce string, announceList [][]string, rng *rand.Rand) *Tiers {
	t := &Tiers{}
	seen := make(map[string]bool)
	for _, tier := range announceList {
		var keep []string
		for _, u := range tier {
			u = strings.TrimSpace(u)
			if seen[u] || !Supported(u) {
				continue
			}
			seen[u] = true
			keep = append(keep, u)
		}
		if len(keep) == 0 {
			continue
		}
		if rng != nil {
			rng.Shuffle(len(keep), func(i, j int) { keep[i], keep[j] = keep[j], keep[i] })
		}
		t.tiers = append(t.tiers, keep)
	}
	if len(t.tiers) == 0 {
		if a := strings.TrimSpace(announce); Supported(a) {
			t.tiers = [][]string{{a}}
		}
	}
	return t
}

// URLs returns every tracker URL in the order they would be tried.
func (t *Tiers) URLs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, tier := range t.tiers {
		out = append(out, tier...)
	}
	return out
}

// Tiers returns a copy of the tiers in their current order.
func (t *Tiers) Tiers() [][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([][]string, len(t.tiers))
	for i, tier := range t.tiers {
		out[i] = slices.Clone(tier)
	}
	return out
}

// Announce tries the trackers in order, tier by tier, until one answers;
// that URL moves to the front of its tier and is returned with the answer.
// If every tracker fails it returns the last error (ErrNoTrackers when there
// are none). It stops early, with ctx's error, when ctx ends. The lock is
// not held while talking to trackers.
func (t *Tiers) Announce(ctx context.Context, c *Client, req AnnounceRequest) (*AnnounceResponse, string, error) {
	urls := t.URLs()
	if len(urls) == 0 {
		return nil, "", ErrNoTrackers
	}
	var lastErr error
	for _, u := range urls {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				return nil, "", fmt.Errorf("%w (last tracker error: %v)", err, lastErr)
			}
			return nil, "", err
		}
		resp, err := c.Announce(ctx, u, req)
		if err == nil {
			t.promote(u)
			return resp, u, nil
		}
		lastErr = err
	}
	return nil, "", lastErr
}

// promote moves u to the front of its tier (if it is still there).
func (t *Tiers) promote(u string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tier := range t.tiers {
		if i := slices.Index(tier, u); i > 0 {
			copy(tier[1:i+1], tier[:i])
			tier[0] = u
			return
		}
	}
}
