package server

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

const (
	limiterShards = 64
	// limiterShardCap bounds the IPs one shard remembers. Over the cap the
	// shard forgets everyone (a crude but bounded reset): memory never
	// grows with the number of source addresses.
	limiterShardCap = 1 << 16
)

// rateLimiter is a per-IP token bucket, sharded by IP hash.
type rateLimiter struct {
	rate  float64 // tokens per second; static after construction
	burst float64 // bucket size; static after construction
	seed  maphash.Seed
	shard [limiterShards]limShard
}

type limShard struct {
	mu sync.Mutex
	m  map[netip.Addr]bucket // guarded by mu
}

type bucket struct {
	tokens float32
	last   int64 // unix nanoseconds of the last refill
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	l := &rateLimiter{rate: rate, burst: float64(burst), seed: maphash.MakeSeed()}
	for i := range l.shard {
		l.shard[i].m = make(map[netip.Addr]bucket)
	}
	return l
}

func (l *rateLimiter) shardOf(ip netip.Addr) *limShard {
	b := ip.As16()
	return &l.shard[maphash.Bytes(l.seed, b[:])%limiterShards]
}

// allow takes one token from ip's bucket and reports whether there was one.
func (l *rateLimiter) allow(ip netip.Addr, now time.Time) bool {
	sh := l.shardOf(ip)
	ns := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.m[ip]
	if !ok {
		if len(sh.m) >= limiterShardCap {
			clear(sh.m)
		}
		b = bucket{tokens: float32(l.burst), last: ns}
	} else if ns > b.last {
		t := float64(b.tokens) + float64(ns-b.last)/1e9*l.rate
		b.tokens = float32(min(t, l.burst))
		b.last = ns
	}
	if b.tokens < 1 {
		sh.m[ip] = b
		return false
	}
	b.tokens--
	sh.m[ip] = b
	return true
}

// collect forgets IPs whose bucket has refilled completely.
func (l *rateLimiter) collect(now time.Time) {
	ns := now.UnixNano()
	full := int64(l.burst / l.rate * 1e9)
	for i := range l.shard {
		sh := &l.shard[i]
		sh.mu.Lock()
		for ip, b := range sh.m {
			if ns-b.last > full {
				delete(sh.m, ip)
			}
		}
		sh.mu.Unlock()
	}
}
