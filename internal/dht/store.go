package dht

import (
	"crypto/sha1"
	"crypto/subtle"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Token, peer store and rate limit settings. All three types here are pure:
// time and randomness are passed in; the server guards them with its mutex.
const (
	// TokenRotate is how often the token secret changes; a token is
	// accepted while its secret is current or previous (up to 2x this).
	TokenRotate = 5 * time.Minute
	// PeerTTL is how long an announced peer is kept.
	PeerTTL = 30 * time.Minute
	// maxPeersPerHash and maxHashes bound the peer store.
	maxPeersPerHash = 1000
	maxHashes       = 10000
)

// tokens issues announce tokens bound to the querier's IP: the first 8
// bytes of SHA-1(secret || ip). Secrets rotate every TokenRotate.
type tokens struct {
	cur, prev [16]byte
	rotated   time.Time
}

func (t *tokens) rotate(now time.Time, rng *rand.Rand) {
	if t.rotated.IsZero() {
		t.cur = randomSecret(rng)
		t.prev = randomSecret(rng)
		t.rotated = now
	}
	for now.Sub(t.rotated) >= TokenRotate {
		t.prev = t.cur
		t.cur = randomSecret(rng)
		t.rotated = t.rotated.Add(TokenRotate)
		if now.Sub(t.rotated) >= 2*TokenRotate { // long idle: skip ahead
			t.rotated = now
		}
	}
}

func randomSecret(rng *rand.Rand) [16]byte {
	var s [16]byte
	for i := range s {
		s[i] = byte(rng.Uint32())
	}
	return s
}

func tokenFor(secret [16]byte, ip netip.Addr) string {
	b := ip.Unmap().AsSlice()
	h := sha1.Sum(append(secret[:], b...))
	return string(h[:8])
}

// issue returns the token for ip at now.
func (t *tokens) issue(ip netip.Addr, now time.Time, rng *rand.Rand) string {
	t.rotate(now, rng)
	return tokenFor(t.cur, ip)
}

// valid reports whether tok was issued to ip within the last one or two
// rotation periods.
func (t *tokens) valid(tok string, ip netip.Addr, now time.Time, rng *rand.Rand) bool {
	t.rotate(now, rng)
	for _, s := range [][16]byte{t.cur, t.prev} {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(tokenFor(s, ip))) == 1 {
			return true
		}
	}
	return false
}

// peerStore keeps announced peers per info-hash, each with its expiry.
type peerStore struct {
	m map[ID]map[netip.AddrPort]time.Time
}

func (p *peerStore) add(ih ID, peer netip.AddrPort, now time.Time) {
	if p.m == nil {
		p.m = map[ID]map[netip.AddrPort]time.Time{}
	}
	s, ok := p.m[ih]
	if !ok {
		if len(p.m) >= maxHashes {
			return
		}
		s = map[netip.AddrPort]time.Time{}
		p.m[ih] = s
	}
	if _, ok := s[peer]; !ok && len(s) >= maxPeersPerHash {
		return
	}
	s[peer] = now.Add(PeerTTL)
}

// get returns up to max live peers of ih of one family (v6 or not), in
// random order.
func (p *peerStore) get(ih ID, v6 bool, max int, now time.Time, rng *rand.Rand) []netip.AddrPort {
	var out []netip.AddrPort
	for a, exp := range p.m[ih] {
		if now.After(exp) || a.Addr().Unmap().Is4() == v6 {
			continue
		}
		out = append(out, a)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// expire drops expired peers and empty info-hashes.
func (p *peerStore) expire(now time.Time) {
	for ih, s := range p.m {
		for a, exp := range s {
			if now.After(exp) {
				delete(s, a)
			}
		}
		if len(s) == 0 {
			delete(p.m, ih)
		}
	}
}

// sample returns up to max random info-hashes and how many are stored (BEP 51).
func (p *peerStore) sample(max int, rng *rand.Rand) ([]ID, int) {
	out := make([]ID, 0, min(max, len(p.m)))
	for ih := range p.m {
		out = append(out, ih)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	n := len(out)
	if len(out) > max {
		out = out[:max]
	}
	return out, n
}

// rateLimiter is a token bucket per source IP, bounded in the number of IPs
// it tracks (the least recently refilled are forgotten first when full).
type rateLimiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxIPs  int
	buckets map[netip.Addr]*ipBucket
}

type ipBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64, maxIPs int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, maxIPs: maxIPs, buckets: map[netip.Addr]*ipBucket{}}
}

// allow takes one token for ip at now, reporting whether one was available.
func (r *rateLimiter) allow(ip netip.Addr, now time.Time) bool {
	if r.rate <= 0 {
		return true
	}
	b, ok := r.buckets[ip]
	if !ok {
		if len(r.buckets) >= r.maxIPs {
			r.prune(now)
			if len(r.buckets) >= r.maxIPs {
				return false // under a flood of sources: refuse newcomers
			}
		}
		b = &ipBucket{tokens: r.burst, last: now}
		r.buckets[ip] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets IPs whose bucket has refilled completely.
func (r *rateLimiter) prune(now time.Time) {
	for ip, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.buckets, ip)
		}
	}
}
