package krpc

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Compact sizes.
const (
	CompactAddr4 = 6       // IPv4 address + port
	CompactAddr6 = 18      // IPv6 address + port
	CompactNode4 = 20 + 6  // node id + compact IPv4 address
	CompactNode6 = 20 + 18 // node id + compact IPv6 address
)

// NodeInfo is a node id and its UDP address.
type NodeInfo struct {
	ID   [20]byte
	Addr netip.AddrPort
}

// AppendAddr appends the compact form of a (6 or 18 bytes; IPv4-mapped
// addresses are written as IPv4).
func AppendAddr(dst []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b := ip.As4()
		dst = append(dst, b[:]...)
	} else {
		b := ip.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port())
}

// ParseAddr decodes a 6- or 18-byte compact address.
func ParseAddr(b []byte) (netip.AddrPort, error) {
	switch len(b) {
	case CompactAddr4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:])), nil
	case CompactAddr6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), binary.BigEndian.Uint16(b[16:])), nil
	}
	return netip.AddrPort{}, fmt.Errorf("krpc: compact address of %d bytes", len(b))
}

// EncodeNodes returns the compact node info of the nodes of one family
// (v6=false: IPv4 nodes, 26 bytes each; v6=true: IPv6 nodes, 38 bytes each).
// Nodes of the other family are skipped.
func EncodeNodes(nodes []NodeInfo, v6 bool) string {
	var b []byte
	for _, n := range nodes {
		if n.Addr.Addr().Unmap().Is4() == v6 {
			continue
		}
		b = append(b, n.ID[:]...)
		b = AppendAddr(b, n.Addr)
	}
	return string(b)
}

// ParseNodes decodes a "nodes" (v6=false) or "nodes6" (v6=true) string. At
// most MaxNodes entries are returned; entries with port 0 or an unspecified
// address are dropped. A length that is not a multiple of the entry size is
// an error.
func ParseNodes(s string, v6 bool) ([]NodeInfo, error) {
	size := CompactNode4
	if v6 {
		size = CompactNode6
	}
	if len(s)%size != 0 {
		return nil, fmt.Errorf("krpc: compact nodes of %d bytes is not a multiple of %d", len(s), size)
	}
	n := min(len(s)/size, MaxNodes)
	out := make([]NodeInfo, 0, n)
	for i := 0; i < n; i++ {
		e := s[i*size : (i+1)*size]
		var ni NodeInfo
		copy(ni.ID[:], e[:20])
		a, err := ParseAddr([]byte(e[20:]))
		if err != nil {
			return nil, err
		}
		if a.Port() == 0 || a.Addr().IsUnspecified() {
			continue
		}
		ni.Addr = a
		out = append(out, ni)
	}
	return out, nil
}

// EncodePeers returns "values" entries for the peers.
func EncodePeers(peers []netip.AddrPort) []string {
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		out = append(out, string(AppendAddr(nil, p)))
	}
	return out
}

// ParsePeers decodes "values": at most MaxValues peers; malformed entries and
// entries with port 0 are skipped (some clients send odd ones).
func ParsePeers(values []string) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, min(len(values), MaxValues))
	for _, v := range values {
		if len(out) == MaxValues {
			break
		}
		a, err := ParseAddr([]byte(v))
		if err != nil || a.Port() == 0 {
			continue
		}
		out = append(out, a)
	}
	return out
}

// ParseSamples decodes a BEP 51 "samples" string into at most MaxSamples
// info-hashes.
func ParseSamples(s string) ([][20]byte, error) {
	if len(s)%20 != 0 {
		return nil, fmt.Errorf("krpc: samples of %d bytes is not a multiple of 20", len(s))
	}
	n := min(len(s)/20, MaxSamples)
	out := make([][20]byte, n)
	for i := range out {
		copy(out[i][:], s[i*20:])
	}
	return out, nil
}
