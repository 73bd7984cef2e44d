package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"math"
	"net/netip"
)

// AllowedFastSet computes the BEP 6 allowed fast set of k pieces for a peer
// at ip, exactly as the BEP specifies for IPv4:
//
//	x = (ip & 0xFFFFFF00) as 4 big-endian bytes ++ infohash
//	while len(a) < k:
//	    x = SHA1(x)
//	    for i in 0..4 while len(a) < k:
//	        index = big-endian u32 x[4i:4i+4] % numPieces
//	        if index not in a: append index
//
// BEP 6 defines no IPv6 form; for IPv6 shoal uses the first 8 bytes (the
// /64 prefix) in place of the masked IPv4 address. IPv4-mapped addresses
// are treated as IPv4. k is capped at numPieces; numPieces <= 0, k <= 0 or
// an invalid ip give nil.
func AllowedFastSet(k int, ip netip.Addr, infoHash [20]byte, numPieces int) []uint32 {
	if k <= 0 || numPieces <= 0 || !ip.IsValid() {
		return nil
	}
	if uint64(numPieces) > math.MaxUint32 {
		numPieces = math.MaxUint32
	}
	if k > numPieces {
		k = numPieces
	}
	ip = ip.Unmap()
	var seed []byte
	if ip.Is4() {
		b := ip.As4()
		seed = append(seed, b[0], b[1], b[2], 0)
	} else {
		b := ip.As16()
		seed = append(seed, b[:8]...)
	}
	seed = append(seed, infoHash[:]...)
	x := sha1.Sum(seed)
	out := make([]uint32, 0, k)
	for {
		for i := 0; i < 5 && len(out) < k; i++ {
			idx := binary.BigEndian.Uint32(x[i*4:]) % uint32(numPieces)
			if !containsU32(out, idx) {
				out = append(out, idx)
			}
		}
		if len(out) >= k {
			return out
		}
		x = sha1.Sum(x[:])
	}
}

func containsU32(s []uint32, v uint32) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}
