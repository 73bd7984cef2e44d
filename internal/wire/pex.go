package wire

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// BEP 11 ut_pex. The extended payload (ext id = receiver's m["ut_pex"]) is
// a bencoded dictionary of compact peer strings:
//
//	added     IPv4 peers, 6 bytes each (compact, BEP 23)
//	added.f   one flag byte per "added" peer (PexFlag*)
//	dropped   IPv4 peers, 6 bytes each
//	added6    IPv6 peers, 18 bytes each (BEP 7)
//	added6.f  one flag byte per "added6" peer
//	dropped6  IPv6 peers, 18 bytes each
//
// e.g. d5:added6:<6 bytes>7:added.f1:<flag>6:added60:8:added6.f0:7:dropped0:8:dropped60:e
const MaxPexPeers = 200 // per direction (added, dropped), IPv4 and IPv6 together

// Flags of an added peer (BEP 11).
const (
	PexPrefersEncryption byte = 0x01
	PexSeed              byte = 0x02 // seed or upload-only
	PexUTP               byte = 0x04 // supports uTP
	PexHolepunch         byte = 0x08 // supports ut_holepunch
	PexReachable         byte = 0x10 // the sender connected to it (outgoing)
)

// ErrBadPex is returned (wrapped) for a malformed ut_pex message.
var ErrBadPex = errors.New("wire: bad ut_pex message")

// PexMsg is one ut_pex message. IPv4 and IPv6 peers are mixed; AddedFlags
// has exactly one entry per Added peer.
type PexMsg struct {
	Added      []netip.AddrPort
	AddedFlags []byte
	Dropped    []netip.AddrPort
}

type pexDict struct {
	Added    []byte `bencode:"added"`
	AddedF   []byte `bencode:"added.f"`
	Dropped  []byte `bencode:"dropped"`
	Added6   []byte `bencode:"added6"`
	Added6F  []byte `bencode:"added6.f"`
	Dropped6 []byte `bencode:"dropped6"`
}

// ParsePex decodes a ut_pex payload. Compact strings whose length is not a
// multiple of the entry size are an error; keys may come in any order and
// unknown keys are ignored. More than MaxPexPeers peers in a direction are
// TRUNCATED (IPv4 first, then IPv6), not an error. A flags string shorter
// than its peer list is padded with zero flags, a longer one truncated.
func ParsePex(payload []byte) (PexMsg, error) {
	var m PexMsg
	var d pexDict
	if _, err := bencode.UnmarshalPrefix(payload, &d, peerLimits); err != nil {
		return m, fmt.Errorf("%w: %w", ErrBadPex, err)
	}
	a4, err := parseCapped(d.Added, false, MaxPexPeers)
	if err != nil {
		return m, fmt.Errorf("%w: added: %w", ErrBadPex, err)
	}
	a6, err := parseCapped(d.Added6, true, MaxPexPeers-len(a4))
	if err != nil {
		return m, fmt.Errorf("%w: added6: %w", ErrBadPex, err)
	}
	d4, err := parseCapped(d.Dropped, false, MaxPexPeers)
	if err != nil {
		return m, fmt.Errorf("%w: dropped: %w", ErrBadPex, err)
	}
	d6, err := parseCapped(d.Dropped6, true, MaxPexPeers-len(d4))
	if err != nil {
		return m, fmt.Errorf("%w: dropped6: %w", ErrBadPex, err)
	}
	if n := len(a4) + len(a6); n > 0 {
		m.Added = append(append(make([]netip.AddrPort, 0, n), a4...), a6...)
		m.AddedFlags = make([]byte, n)
		copy(m.AddedFlags[:len(a4)], d.AddedF)
		copy(m.AddedFlags[len(a4):], d.Added6F)
	}
	if n := len(d4) + len(d6); n > 0 {
		m.Dropped = append(append(make([]netip.AddrPort, 0, n), d4...), d6...)
	}
	return m, nil
}

// parseCapped is ParseCompactPeers where max 0 means "none" (the length is
// still checked).
func parseCapped(b []byte, v6 bool, max int) ([]netip.AddrPort, error) {
	if max > 0 {
		return ParseCompactPeers(b, v6, max)
	}
	size := CompactPeerLen4
	if v6 {
		size = CompactPeerLen6
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes, entry size %d", ErrCompactLen, len(b), size)
	}
	return nil, nil
}

// Marshal encodes m canonically with all six keys present (empty strings
// where there is nothing to say). Peers are split by address family
// (IPv4-mapped IPv6 counts as IPv4); invalid addresses are skipped; a
// missing flag is 0. At most MaxPexPeers peers per direction are written
// (the rest are TRUNCATED, in order).
func (m PexMsg) Marshal() []byte {
	var d pexDict
	n := 0
	for i, ap := range m.Added {
		if n == MaxPexPeers {
			break
		}
		var f byte
		if i < len(m.AddedFlags) {
			f = m.AddedFlags[i]
		}
		switch a := ap.Addr().Unmap(); {
		case a.Is4():
			d.Added = AppendCompactPeer(d.Added, ap)
			d.AddedF = append(d.AddedF, f)
		case a.Is6():
			d.Added6 = AppendCompactPeer(d.Added6, ap)
			d.Added6F = append(d.Added6F, f)
		default:
			continue
		}
		n++
	}
	n = 0
	for _, ap := range m.Dropped {
		if n == MaxPexPeers {
			break
		}
		switch a := ap.Addr().Unmap(); {
		case a.Is4():
			d.Dropped = AppendCompactPeer(d.Dropped, ap)
		case a.Is6():
			d.Dropped6 = AppendCompactPeer(d.Dropped6, ap)
		default:
			continue
		}
		n++
	}
	return bencode.MustMarshal(d)
}
