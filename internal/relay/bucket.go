package relay

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket: rate bytes per second, holding at most burst
// tokens. Reserve is pure (the caller passes now), so it is tested without
// clocks; wait adds the sleeping. A nil *bucket is unlimited.
type bucket struct {
	rate  float64 // static after construction; bytes per second
	burst float64 // static after construction

	mu     sync.Mutex // guards tokens, last
	tokens float64    // may go negative: a debt later reservations wait out
	last   time.Time
}

// newBucket returns a bucket that starts full; rate <= 0 means unlimited (nil).
func newBucket(rate int64, now time.Time) *bucket {
	if rate <= 0 {
		return nil
	}
	burst := float64(rate) / 10 // 100 ms worth of traffic
	if burst < 2*spliceBuf {
		burst = 2 * spliceBuf
	}
	return &bucket{rate: float64(rate), burst: burst, tokens: burst, last: now}
}

// reserve takes n tokens at time now and returns how long the caller must
// wait before using them (0 if they were available).
func (b *bucket) reserve(now time.Time, n int) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// wait reserves n tokens in every bucket and sleeps for the longest wait.
func wait(ctx context.Context, n int, bs ...*bucket) error {
	now := time.Now()
	var d time.Duration
	for _, b := range bs {
		d = max(d, b.reserve(now, n))
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
