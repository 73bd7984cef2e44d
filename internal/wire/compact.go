package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Compact peer encodings (BEP 23 for IPv4, BEP 7 for IPv6), used in
// tracker responses, the DHT and ut_pex:
//
//	IPv4: 4-byte address, 2-byte port (big-endian)  = 6 bytes per peer
//	IPv6: 16-byte address, 2-byte port (big-endian) = 18 bytes per peer
const (
	CompactPeerLen4 = 6
	CompactPeerLen6 = 18
)

// ErrCompactLen is returned (wrapped) when a compact peer string is not a
// whole number of entries.
var ErrCompactLen = errors.New("wire: compact peers length not a multiple of the entry size")

// ParseCompactPeers decodes a compact peer list: 6-byte entries, or 18-byte
// entries if v6. A length that is not a multiple of the entry size is an
// error. At most max entries are returned (the rest are ignored; max <= 0
// means no cap other than the input length), so allocation is bounded by
// both. IPv4-mapped IPv6 addresses are unmapped to IPv4. Entries are
// returned as sent, including port 0 and unspecified addresses.
func ParseCompactPeers(b []byte, v6 bool, max int) ([]netip.AddrPort, error) {
	size := CompactPeerLen4
	if v6 {
		size = CompactPeerLen6
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes, entry size %d", ErrCompactLen, len(b), size)
	}
	n := len(b) / size
	if max > 0 && n > max {
		n = max
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]netip.AddrPort, n)
	for i := range out {
		e := b[i*size : (i+1)*size]
		var a netip.Addr
		if v6 {
			a = netip.AddrFrom16([16]byte(e[:16])).Unmap()
		} else {
			a = netip.AddrFrom4([4]byte(e[:4]))
		}
		out[i] = netip.AddrPortFrom(a, binary.BigEndian.Uint16(e[size-2:]))
	}
	return out, nil
}

// AppendCompactPeer appends the compact form of ap: 6 bytes for IPv4 (and
// IPv4-mapped IPv6, which is unmapped), 18 bytes for IPv6 (any zone is
// dropped). An invalid address appends nothing.
func AppendCompactPeer(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		dst = append(dst, b[:]...)
	case a.Is6():
		b := a.As16()
		dst = append(dst, b[:]...)
	default:
		return dst
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}
