package tracker

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Compact peer forms (BEP 23 / BEP 7 / BEP 15):
//
//	IPv4 peer: 4-byte address, 2-byte big-endian port  (6 bytes)
//	IPv6 peer: 16-byte address, 2-byte big-endian port (18 bytes)
//
// A string whose length is not a multiple of the entry size is an error.
const (
	compactV4Len = 6
	compactV6Len = 18
)

// peerSet collects peers, dropping duplicates, port 0 and unspecified or
// invalid addresses, and stops at a cap. Owned by one parse call.
type peerSet struct {
	max   int
	peers []netip.AddrPort
	seen  map[netip.AddrPort]struct{}
}

func newPeerSet(max int) *peerSet {
	return &peerSet{max: max, seen: make(map[netip.AddrPort]struct{})}
}

func (s *peerSet) full() bool { return len(s.peers) >= s.max }

// add reports whether the peer was kept.
func (s *peerSet) add(ap netip.AddrPort) bool {
	if s.full() {
		return false
	}
	a := ap.Addr().Unmap()
	if !a.IsValid() || a.IsUnspecified() || ap.Port() == 0 {
		return false
	}
	ap = netip.AddrPortFrom(a, ap.Port())
	if _, dup := s.seen[ap]; dup {
		return false
	}
	s.seen[ap] = struct{}{}
	s.peers = append(s.peers, ap)
	return true
}

// addCompact decodes a compact peer string into s. Nothing is allocated
// from the string's length: entries are added one by one up to the cap.
func (s *peerSet) addCompact(b []byte, v6 bool) error {
	size := compactV4Len
	if v6 {
		size = compactV6Len
	}
	if len(b)%size != 0 {
		return fmt.Errorf("compact peer string of %d bytes is not a multiple of %d", len(b), size)
	}
	for off := 0; off+size <= len(b) && !s.full(); off += size {
		e := b[off : off+size]
		var a netip.Addr
		if v6 {
			a = netip.AddrFrom16([16]byte(e[:16]))
		} else {
			a = netip.AddrFrom4([4]byte(e[:4]))
		}
		s.add(netip.AddrPortFrom(a, binary.BigEndian.Uint16(e[size-2:])))
	}
	return nil
}
