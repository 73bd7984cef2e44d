// Package dht is shoal's mainline Kademlia DHT node (BEP 5), with BEP 32
// (IPv6 nodes), BEP 42 (node ids bound to IPs) and BEP 51 (sample_infohashes).
//
// The routing table (Table) and the iterative lookup (Lookup) are pure state
// machines: they import no net, os, sync or clock, take time and randomness
// as arguments, and are tested deterministically and in a simulation of
// thousands of nodes. Server is the UDP node that drives them.
package dht

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// ID is a 160-bit node id or info-hash.
type ID [20]byte

// Xor returns the XOR distance between a and b.
func (a ID) Xor(b ID) ID {
	var d ID
	for i := range a {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// Less reports whether a < b as big-endian numbers.
func (a ID) Less(b ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// CommonPrefixLen returns the number of leading bits a and b share (160 if equal).
func CommonPrefixLen(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// closer reports whether x is closer to target than y.
func closer(target, x, y ID) bool {
	for i := range target {
		dx, dy := x[i]^target[i], y[i]^target[i]
		if dx != dy {
			return dx < dy
		}
	}
	return false
}

// RandomID returns a random id drawn from rng.
func RandomID(rng *rand.Rand) ID {
	var id ID
	for i := 0; i < 20; i += 8 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], rng.Uint64())
		copy(id[i:], b[:])
	}
	return id
}

// randomIDInBucket returns a random id sharing exactly prefix leading bits
// with self (the range covered by bucket prefix).
func randomIDInBucket(self ID, prefix int, rng *rand.Rand) ID {
	id := RandomID(rng)
	if prefix >= 160 {
		return self
	}
	for i := 0; i < prefix; i++ {
		setBit(&id, i, bit(self, i))
	}
	setBit(&id, prefix, !bit(self, prefix))
	return id
}

func bit(id ID, i int) bool { return id[i/8]&(0x80>>(i%8)) != 0 }

func setBit(id *ID, i int, v bool) {
	if v {
		id[i/8] |= 0x80 >> (i % 8)
	} else {
		id[i/8] &^= 0x80 >> (i % 8)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bep42Prefix returns the crc32c value whose top 21 bits a BEP 42 node id
// for ip with random byte r must start with.
func bep42Prefix(ip netip.Addr, r byte) uint32 {
	ip = ip.Unmap()
	var buf []byte
	if ip.Is4() {
		a := ip.As4()
		mask := [4]byte{0x03, 0x0f, 0x3f, 0xff}
		for i := range a {
			a[i] &= mask[i]
		}
		buf = a[:]
	} else {
		a := ip.As16()
		mask := [8]byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff}
		for i := range mask {
			a[i] &= mask[i]
		}
		buf = a[:8]
	}
	buf[0] |= (r & 0x7) << 5
	return crc32.Checksum(buf, castagnoli)
}

// BEP42ID returns a node id for the external address ip following BEP 42:
// the first 21 bits come from crc32c of the masked ip and a random r, the
// last byte is r, the rest is random.
func BEP42ID(ip netip.Addr, rng *rand.Rand) ID {
	id := RandomID(rng)
	r := id[19]
	c := bep42Prefix(ip, r)
	id[0] = byte(c >> 24)
	id[1] = byte(c >> 16)
	id[2] = byte(c>>8)&0xf8 | id[2]&0x7
	return id
}

// BEP42Exempt reports whether ip is exempt from BEP 42 id checks: loopback,
// private, link-local and unspecified addresses (local networks).
func BEP42Exempt(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}

// BEP42Valid reports whether id is a valid BEP 42 id for ip. Exempt
// addresses are always valid.
func BEP42Valid(id ID, ip netip.Addr) bool {
	if BEP42Exempt(ip) {
		return true
	}
	c := bep42Prefix(ip, id[19])
	return id[0] == byte(c>>24) && id[1] == byte(c>>16) && id[2]&0xf8 == byte(c>>8)&0xf8
}
