package wire

import (
	"errors"
	"fmt"
	"io"
)

// Protocol is the protocol string of the BEP 3 handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the length of a complete handshake.
//
// Byte layout (68 bytes):
//
//	offset size
//	0      1    pstrlen = 19
//	1      19   pstr    = "BitTorrent protocol"
//	20     8    reserved (extension bits, see SetExtended/SetFast/SetDHT)
//	28     20   info-hash
//	48     20   peer id
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// handshakeHeadLen is the part up to and including the info-hash.
const handshakeHeadLen = HandshakeLen - 20

// Reserved bits (byte index, mask) in the handshake.
const (
	extendedByte, extendedMask = 5, 0x10 // BEP 10 extension protocol
	fastByte, fastMask         = 7, 0x04 // BEP 6 fast extension
	dhtByte, dhtMask           = 7, 0x01 // BEP 5 DHT (port message)
)

// ErrBadHandshake is returned (wrapped) when a handshake does not start with
// pstrlen 19 and the exact protocol string.
var ErrBadHandshake = errors.New("wire: bad handshake")

// Handshake is the BEP 3 handshake. It is a plain value.
type Handshake struct {
	Reserved [8]byte
	InfoHash [20]byte
	PeerID   [20]byte
}

// Append appends the 68-byte encoding of h to dst.
func (h Handshake) Append(dst []byte) []byte {
	dst = append(dst, byte(len(Protocol)))
	dst = append(dst, Protocol...)
	dst = append(dst, h.Reserved[:]...)
	dst = append(dst, h.InfoHash[:]...)
	return append(dst, h.PeerID[:]...)
}

// SetExtended sets the BEP 10 extension protocol bit (reserved[5] & 0x10).
func (h *Handshake) SetExtended() { h.Reserved[extendedByte] |= extendedMask }

// SetFast sets the BEP 6 fast extension bit (reserved[7] & 0x04).
func (h *Handshake) SetFast() { h.Reserved[fastByte] |= fastMask }

// SetDHT sets the BEP 5 DHT bit (reserved[7] & 0x01).
func (h *Handshake) SetDHT() { h.Reserved[dhtByte] |= dhtMask }

// Extended reports whether the BEP 10 extension protocol bit is set.
func (h Handshake) Extended() bool { return h.Reserved[extendedByte]&extendedMask != 0 }

// Fast reports whether the BEP 6 fast extension bit is set.
func (h Handshake) Fast() bool { return h.Reserved[fastByte]&fastMask != 0 }

// DHT reports whether the BEP 5 DHT bit is set.
func (h Handshake) DHT() bool { return h.Reserved[dhtByte]&dhtMask != 0 }

// ReadHandshake reads a complete 68-byte handshake. It is strict: pstrlen
// must be 19 and pstr exactly Protocol. A short read gives
// io.ErrUnexpectedEOF (io.EOF if nothing at all was read).
func ReadHandshake(r io.Reader) (Handshake, error) {
	var h Handshake
	reserved, infoHash, err := ReadHandshakeHead(r)
	if err != nil {
		return h, err
	}
	h.Reserved, h.InfoHash = reserved, infoHash
	if h.PeerID, err = ReadPeerID(r); err != nil {
		return h, err
	}
	return h, nil
}

// ReadHandshakeHead reads the first 48 bytes of a handshake (pstrlen, pstr,
// reserved, info-hash), so that a relay or a multi-torrent listener can route
// on the info-hash before the peer id arrives; read the rest with ReadPeerID.
// The pstrlen byte is checked before the rest is read.
func ReadHandshakeHead(r io.Reader) (reserved [8]byte, infoHash [20]byte, err error) {
	var buf [handshakeHeadLen]byte
	if _, err = io.ReadFull(r, buf[:1]); err != nil {
		return reserved, infoHash, fmt.Errorf("wire: reading handshake: %w", err)
	}
	if buf[0] != byte(len(Protocol)) {
		return reserved, infoHash, fmt.Errorf("%w: pstrlen %d, want %d", ErrBadHandshake, buf[0], len(Protocol))
	}
	if _, err = io.ReadFull(r, buf[1:]); err != nil {
		return reserved, infoHash, fmt.Errorf("wire: reading handshake: %w", noEOF(err))
	}
	if string(buf[1:1+len(Protocol)]) != Protocol {
		return reserved, infoHash, fmt.Errorf("%w: protocol %q", ErrBadHandshake, buf[1:1+len(Protocol)])
	}
	copy(reserved[:], buf[20:28])
	copy(infoHash[:], buf[28:48])
	return reserved, infoHash, nil
}

// ReadPeerID reads the 20-byte peer id that ends a handshake.
func ReadPeerID(r io.Reader) ([20]byte, error) {
	var id [20]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return id, fmt.Errorf("wire: reading handshake peer id: %w", noEOF(err))
	}
	return id, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF for reads that started in the
// middle of a unit.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
