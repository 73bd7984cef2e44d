package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// memShards is the number of independently locked parts of the info-hash
// map; a power of two, indexed by the hash's first bytes.
const memShards = 1024

// Peer value layout (uint32): expiry in whole seconds since the store's
// epoch, shifted left by one, with the low bit set for seeders. 31 bits of
// seconds last 68 years per process.
const seederBit = 1

// sweepEvery is how stale a swarm's counts may get before an Announce or
// Scrape touching it drops its expired peers first.
const sweepEvery = 10 // seconds

// MemoryStore is the in-memory Store: a sharded map from info-hash to
// swarm, each swarm a sorted slice of 10-byte IPv4 entries (6-byte compact
// address + 4-byte value) or 22-byte IPv6 entries, searched by binary
// search, like opentracker's sorted peer vectors. Slices hold no pointers,
// so the garbage collector never scans peers.
type MemoryStore struct {
	epoch  time.Time // static after construction
	shards [memShards]memShard
}

type memShard struct {
	mu     sync.Mutex
	swarms map[InfoHash]*swarm // guarded by mu
	_      [40]byte            // keep shards on separate cache lines
}

// peer4 and peer6 are one peer: compact address, then the value
// (expiry<<1 | seeder bit) as little-endian bytes, keeping the struct
// free of padding.
type (
	peer4 struct {
		a [6]byte
		v [4]byte
	}
	peer6 struct {
		a [18]byte
		v [4]byte
	}
)

func (p *peer4) val() uint32 { return binary.LittleEndian.Uint32(p.v[:]) }
func (p *peer6) val() uint32 { return binary.LittleEndian.Uint32(p.v[:]) }

// swarm is one torrent's peers; every field guarded by its shard's mu.
type swarm struct {
	v4         []peer4 // sorted by address
	v6         []peer6 // sorted by address
	seeders    uint32
	leechers   uint32
	downloaded uint32
	swept      uint32 // seconds since epoch of the last expiry sweep
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	// The epoch lies a little in the past so that "now" is never 0.
	s := &MemoryStore{epoch: time.Now().Add(-time.Hour)}
	for i := range s.shards {
		s.shards[i].swarms = make(map[InfoHash]*swarm)
	}
	return s
}

func (s *MemoryStore) secs(t time.Time) uint32 {
	d := t.Sub(s.epoch)
	if d < 0 {
		return 0
	}
	return uint32(d / time.Second)
}

func (s *MemoryStore) shard(h InfoHash) *memShard {
	return &s.shards[binary.BigEndian.Uint16(h[:2])%memShards]
}

// upsert4 sets k's value in the sorted slice (or removes it when del),
// returning the new slice, the old value and whether there was one.
func upsert4(list []peer4, k [6]byte, val uint32, del bool) ([]peer4, uint32, bool) {
	i, found := slices.BinarySearchFunc(list, k, cmpPeer4)
	if found {
		old := list[i].val()
		if del {
			return slices.Delete(list, i, i+1), old, true
		}
		list[i].setVal(val)
		return list, old, true
	}
	if del {
		return list, 0, false
	}
	p := peer4{a: k}
	p.setVal(val)
	return slices.Insert(grow(list), i, p), 0, false
}

// upsert6 is upsert4 for IPv6 peers.
func upsert6(list []peer6, k [18]byte, val uint32, del bool) ([]peer6, uint32, bool) {
	i, found := slices.BinarySearchFunc(list, k, cmpPeer6)
	if found {
		old := list[i].val()
		if del {
			return slices.Delete(list, i, i+1), old, true
		}
		list[i].setVal(val)
		return list, old, true
	}
	if del {
		return list, 0, false
	}
	p := peer6{a: k}
	p.setVal(val)
	return slices.Insert(grow(list), i, p), 0, false
}

// grow makes room for one more entry, by a quarter (at least 2) rather
// than append's doubling: peer lists are most of the store's memory.
func grow[P any](list []P) []P {
	if len(list) < cap(list) {
		return list
	}
	grown := make([]P, len(list), len(list)+max(2, len(list)/4))
	copy(grown, list)
	return grown
}

func cmpPeer4(p peer4, k [6]byte) int  { return bytes.Compare(p.a[:], k[:]) }
func cmpPeer6(p peer6, k [18]byte) int { return bytes.Compare(p.a[:], k[:]) }
func (p *peer4) setVal(v uint32)       { binary.LittleEndian.PutUint32(p.v[:], v) }
func (p *peer6) setVal(v uint32)       { binary.LittleEndian.PutUint32(p.v[:], v) }

// Announce implements Store.
func (s *MemoryStore) Announce(_ context.Context, a PeerAnnounce, now time.Time, dst []byte) (SwarmStats, []byte, error) {
	n := s.secs(now)
	sh := s.shard(a.InfoHash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw := sh.swarms[a.InfoHash]
	if sw == nil {
		if a.Event == EventStopped {
			return SwarmStats{}, dst, nil
		}
		sw = &swarm{swept: n}
		sh.swarms[a.InfoHash] = sw
	}
	if n-sw.swept >= sweepEvery {
		sw.sweep(n)
	}
	v6 := !a.Addr.Addr().Is4()
	del := a.Event == EventStopped
	exp := n + uint32((a.TTL+time.Second-1)/time.Second)
	val := exp << 1
	if a.Seeder {
		val |= seederBit
	}
	var k4 [6]byte
	var k6 [18]byte
	var old uint32
	var had bool
	if v6 {
		appendCompact(k6[:0], a.Addr)
		sw.v6, old, had = upsert6(sw.v6, k6, val, del)
	} else {
		appendCompact(k4[:0], a.Addr)
		sw.v4, old, had = upsert4(sw.v4, k4, val, del)
	}
	if had {
		sw.uncount(old)
	}
	if !del {
		if a.Seeder {
			sw.seeders++
		} else {
			sw.leechers++
		}
	}
	if a.Event == EventCompleted {
		sw.downloaded++
	}
	st := SwarmStats{Seeders: sw.seeders, Leechers: sw.leechers, Downloaded: sw.downloaded}
	if !del && a.NumWant > 0 {
		if v6 {
			dst = pick6(dst, sw.v6, k6, a.Seeder, a.NumWant, n)
		} else {
			dst = pick4(dst, sw.v4, k4, a.Seeder, a.NumWant, n)
		}
	}
	if sw.seeders+sw.leechers == 0 && sw.downloaded == 0 {
		delete(sh.swarms, a.InfoHash)
	}
	return st, dst, nil
}

func (sw *swarm) uncount(v uint32) {
	if v&seederBit != 0 {
		sw.seeders--
	} else {
		sw.leechers--
	}
}

// usable reports whether a peer with value v may be handed out at now to
// an announcer that is a seeder or not.
func usable(v, now uint32, seeder bool) bool {
	return v>>1 > now && (!seeder || v&seederBit == 0)
}

// pickRuns chooses which of n entries to offer when more than want are
// there: the list is cut into want equal runs and the scan starts at a
// random offset in each run (opentracker's scheme), which spreads the
// choice over the swarm. try(i) reports whether entry i was taken.
func pickRuns(n, want int, try func(i int) bool) {
	run := n / want
	for r := range want {
		base, off := r*run, rand.IntN(run)
		for j := range run {
			if try(base + (off+j)%run) {
				break
			}
		}
	}
}

// pick4 appends up to want live IPv4 peers other than self. A seeder
// skips seeders.
func pick4(dst []byte, list []peer4, self [6]byte, seeder bool, want int, now uint32) []byte {
	if len(list) <= want+1 {
		for i := range list {
			if p := &list[i]; p.a != self && usable(p.val(), now, seeder) {
				dst = append(dst, p.a[:]...)
			}
		}
		return dst
	}
	pickRuns(len(list), want, func(i int) bool {
		p := &list[i]
		if p.a == self || !usable(p.val(), now, seeder) {
			return false
		}
		dst = append(dst, p.a[:]...)
		return true
	})
	return dst
}

// pick6 is pick4 for IPv6 peers.
func pick6(dst []byte, list []peer6, self [18]byte, seeder bool, want int, now uint32) []byte {
	if len(list) <= want+1 {
		for i := range list {
			if p := &list[i]; p.a != self && usable(p.val(), now, seeder) {
				dst = append(dst, p.a[:]...)
			}
		}
		return dst
	}
	pickRuns(len(list), want, func(i int) bool {
		p := &list[i]
		if p.a == self || !usable(p.val(), now, seeder) {
			return false
		}
		dst = append(dst, p.a[:]...)
		return true
	})
	return dst
}

// sweep drops expired peers. Caller holds the shard lock.
func (sw *swarm) sweep(now uint32) {
	sw.v4 = slices.DeleteFunc(sw.v4, func(p peer4) bool {
		if p.val()>>1 <= now {
			sw.uncount(p.val())
			return true
		}
		return false
	})
	sw.v6 = slices.DeleteFunc(sw.v6, func(p peer6) bool {
		if p.val()>>1 <= now {
			sw.uncount(p.val())
			return true
		}
		return false
	})
	if cap(sw.v4) > 2*len(sw.v4)+8 {
		sw.v4 = slices.Clone(sw.v4)
	}
	if cap(sw.v6) > 2*len(sw.v6)+8 {
		sw.v6 = slices.Clone(sw.v6)
	}
	sw.swept = now
}

// Scrape implements Store.
func (s *MemoryStore) Scrape(_ context.Context, hashes []InfoHash, now time.Time, dst []SwarmStats) ([]SwarmStats, error) {
	n := s.secs(now)
	for _, h := range hashes {
		sh := s.shard(h)
		sh.mu.Lock()
		var st SwarmStats
		if sw := sh.swarms[h]; sw != nil {
			if n-sw.swept >= sweepEvery {
				sw.sweep(n)
			}
			st = SwarmStats{Seeders: sw.seeders, Leechers: sw.leechers, Downloaded: sw.downloaded}
		}
		sh.mu.Unlock()
		dst = append(dst, st)
	}
	return dst, nil
}

// Collect implements Store. It takes one shard lock at a time, so
// announces to other shards proceed while it runs. Torrents with no peers
// are forgotten (with their downloaded count) only after they are empty.
func (s *MemoryStore) Collect(ctx context.Context, now time.Time) error {
	n := s.secs(now)
	for i := range s.shards {
		if i%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		sh := &s.shards[i]
		sh.mu.Lock()
		for h, sw := range sh.swarms {
			sw.sweep(n)
			if sw.seeders+sw.leechers == 0 {
				delete(sh.swarms, h)
			}
		}
		sh.mu.Unlock()
	}
	return nil
}

// Stats implements Store. Counts may include peers expired since the
// last sweep.
func (s *MemoryStore) Stats(_ context.Context, _ time.Time) (StoreStats, error) {
	var st StoreStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Torrents += len(sh.swarms)
		for _, sw := range sh.swarms {
			st.Seeders += int(sw.seeders)
			st.Leechers += int(sw.leechers)
		}
		sh.mu.Unlock()
	}
	return st, nil
}

// Close implements Store.
func (s *MemoryStore) Close() error { return nil }

// addrFromCompact decodes one compact peer (6 or 18 bytes).
func addrFromCompact(b []byte) (netip.AddrPort, bool) {
	switch len(b) {
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:])), true
	case 18:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), binary.BigEndian.Uint16(b[16:])), true
	}
	return netip.AddrPort{}, false
}
