package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// BEP 55 ut_holepunch, an extension message (BEP 10) with a binary body:
//
//	msg_type uint8 (0 rendezvous, 1 connect, 2 error)
//	addr_type uint8 (0 IPv4, 1 IPv6)
//	addr [4 or 16]byte | port uint16 | err_code uint32   (all big-endian)
//
// Flow: A asks a relaying peer R "rendezvous{B}"; R sends "connect{B}" to A
// and "connect{A}" to B (or "error" to A); then A and B connect to each
// other at once (TCP simultaneous open or uTP).
const (
	HolepunchRendezvous = 0
	HolepunchConnect    = 1
	HolepunchError      = 2
)

// BEP 55 error codes.
const (
	HolepunchNoSuchPeer   = 1 // the target is not connected to the relaying peer
	HolepunchNotConnected = 2 // the target is not connected
	HolepunchNoSupport    = 3 // the target does not support ut_holepunch
	HolepunchNoSelf       = 4 // the target is the relaying peer itself
)

// Holepunch is one ut_holepunch message.
type Holepunch struct {
	Type    uint8
	Addr    netip.AddrPort
	ErrCode uint32
}

// MarshalBinary encodes h.
func (h Holepunch) MarshalBinary() ([]byte, error) {
	if h.Type > HolepunchError {
		return nil, fmt.Errorf("ut_holepunch: message type %d", h.Type)
	}
	if !h.Addr.IsValid() {
		return nil, fmt.Errorf("ut_holepunch: invalid address")
	}
	a := h.Addr.Addr()
	if a.Is4In6() {
		a = a.Unmap()
	}
	b := []byte{h.Type, 0}
	if a.Is6() {
		b[1] = 1
	}
	b = append(b, a.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, h.Addr.Port())
	return binary.BigEndian.AppendUint32(b, h.ErrCode), nil
}

// UnmarshalBinary decodes a ut_holepunch body; its length must match the
// address type exactly (12 or 24 bytes).
func (h *Holepunch) UnmarshalBinary(b []byte) error {
	if len(b) < 2 {
		return fmt.Errorf("ut_holepunch: %d bytes", len(b))
	}
	if b[0] > HolepunchError {
		return fmt.Errorf("ut_holepunch: message type %d", b[0])
	}
	var n int
	switch b[1] {
	case 0:
		n = 4
	case 1:
		n = 16
	default:
		return fmt.Errorf("ut_holepunch: address type %d", b[1])
	}
	if len(b) != 2+n+2+4 {
		return fmt.Errorf("ut_holepunch: %d bytes, want %d", len(b), 2+n+2+4)
	}
	ip, _ := netip.AddrFromSlice(b[2 : 2+n])
	*h = Holepunch{Type: b[0], Addr: netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2+n:])),
		ErrCode: binary.BigEndian.Uint32(b[4+n:])}
	return nil
}
