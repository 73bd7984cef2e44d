package wire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// ID is the one-byte type of a framed message.
//
// Every message after the handshake is framed as
//
//	<length uint32 big-endian><id byte><payload: length-1 bytes>
//
// and a length of 0 (no id, no payload) is a keep-alive. Per-type layouts
// (length is the value of the 4-byte prefix):
//
//	id  name            length   payload
//	0   choke           1        -
//	1   unchoke         1        -
//	2   interested      1        -
//	3   not interested  1        -
//	4   have            5        index u32
//	5   bitfield        1+n      n bytes, piece 0 = high bit of byte 0
//	6   request         13       index u32, begin u32, length u32 (length <= MaxBlock)
//	7   piece           9+n      index u32, begin u32, n bytes block (n <= MaxBlock)
//	8   cancel          13       index u32, begin u32, length u32
//	9   port            3        DHT port u16 (BEP 5)
//	13  suggest         5        index u32 (BEP 6)
//	14  have all        1        - (BEP 6)
//	15  have none       1        - (BEP 6)
//	16  reject          13       index u32, begin u32, length u32 (BEP 6)
//	17  allowed fast    5        index u32 (BEP 6)
//	20  extended        2+n      ext id byte, n bytes (BEP 10; ext id 0 = ExtHandshake)
type ID uint8

// Message IDs.
const (
	Choke         ID = 0
	Unchoke       ID = 1
	Interested    ID = 2
	NotInterested ID = 3
	Have          ID = 4
	Bitfield      ID = 5
	Request       ID = 6
	Piece         ID = 7
	Cancel        ID = 8
	Port          ID = 9
	Suggest       ID = 13
	HaveAll       ID = 14
	HaveNone      ID = 15
	Reject        ID = 16
	AllowedFast   ID = 17
	Extended      ID = 20
)

// MaxBlock is the largest block accepted in a piece message or a request.
const MaxBlock = 128 << 10

// PieceHeaderLen is the size of a piece message before its block data:
// length prefix (4), id (1), index (4), begin (4).
const PieceHeaderLen = 13

// DefaultMaxLen is the cap NewReader uses when given maxLen <= 0: the
// largest piece message (MaxBlock+9) with some slack.
const DefaultMaxLen = MaxBlock + 13

var idNames = [...]string{
	Choke: "choke", Unchoke: "unchoke", Interested: "interested", NotInterested: "not-interested",
	Have: "have", Bitfield: "bitfield", Request: "request", Piece: "piece", Cancel: "cancel",
	Port: "port", Suggest: "suggest", HaveAll: "have-all", HaveNone: "have-none",
	Reject: "reject", AllowedFast: "allowed-fast", Extended: "extended",
}

// String returns the message name, or "unknown(N)".
func (id ID) String() string {
	if int(id) < len(idNames) && idNames[id] != "" {
		return idNames[id]
	}
	return "unknown(" + strconv.Itoa(int(id)) + ")"
}

// fixedLen returns the exact length prefix of a fixed-size message, or 0 for
// variable-size and unknown messages.
func fixedLen(id ID) uint32 {
	switch id {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return 1
	case Have, Suggest, AllowedFast:
		return 5
	case Request, Cancel, Reject:
		return 13
	case Port:
		return 3
	}
	return 0
}

// Message is one framed message. Which fields are meaningful depends on ID:
//
//	have, suggest, allowed-fast:   Index
//	request, cancel, reject:       Index, Begin, Length
//	piece:                         Index, Begin, Payload (the block)
//	bitfield:                      Payload (the bitfield bytes)
//	extended:                      ExtID, Payload (after the ext id byte)
//	port:                          Port
//	unknown ids:                   Payload (everything after the id byte)
//
// A Message from Reader.Read has a Payload that aliases the Reader's buffer.
type Message struct {
	Keepalive            bool
	ID                   ID
	Index, Begin, Length uint32
	Payload              []byte
	ExtID                uint8
	Port                 uint16
}

// Sentinel errors, returned wrapped with detail.
var (
	// ErrMessageTooLong: the length prefix exceeds the Reader's maxLen.
	ErrMessageTooLong = errors.New("wire: message too long")
	// ErrBadLength: the length prefix is wrong for the message type.
	ErrBadLength = errors.New("wire: bad message length")
	// ErrBlockTooLong: a request or piece names a block larger than MaxBlock.
	ErrBlockTooLong = errors.New("wire: block larger than MaxBlock")
)

// AppendMessage appends the framed encoding of m to dst. It does not
// allocate beyond growing dst. For a piece message the block is m.Payload;
// to avoid copying a block, use AppendPieceHeader and write the block after.
func AppendMessage(dst []byte, m Message) []byte {
	if m.Keepalive {
		return binary.BigEndian.AppendUint32(dst, 0)
	}
	be := binary.BigEndian
	switch m.ID {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		dst = be.AppendUint32(dst, 1)
		return append(dst, byte(m.ID))
	case Have, Suggest, AllowedFast:
		dst = be.AppendUint32(dst, 5)
		dst = append(dst, byte(m.ID))
		return be.AppendUint32(dst, m.Index)
	case Request, Cancel, Reject:
		dst = be.AppendUint32(dst, 13)
		dst = append(dst, byte(m.ID))
		dst = be.AppendUint32(dst, m.Index)
		dst = be.AppendUint32(dst, m.Begin)
		return be.AppendUint32(dst, m.Length)
	case Port:
		dst = be.AppendUint32(dst, 3)
		dst = append(dst, byte(m.ID))
		return be.AppendUint16(dst, m.Port)
	case Piece:
		dst = AppendPieceHeader(dst, m.Index, m.Begin, len(m.Payload))
		return append(dst, m.Payload...)
	case Extended:
		dst = be.AppendUint32(dst, uint32(2+len(m.Payload)))
		dst = append(dst, byte(m.ID), m.ExtID)
		return append(dst, m.Payload...)
	default: // bitfield and unknown ids: raw payload
		dst = be.AppendUint32(dst, uint32(1+len(m.Payload)))
		dst = append(dst, byte(m.ID))
		return append(dst, m.Payload...)
	}
}

// AppendPieceHeader appends the 13-byte header of a piece message carrying
// a block of blockLen bytes; the caller writes the block right after it.
func AppendPieceHeader(dst []byte, index, begin uint32, blockLen int) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(9+blockLen))
	dst = append(dst, byte(Piece))
	dst = be.AppendUint32(dst, index)
	return be.AppendUint32(dst, begin)
}

// AppendExtended appends an extended message (id 20) with the given ext id
// whose payload is produced by fill (e.g. AppendMetadataMsg), writing the
// length prefix afterwards so the payload is not copied.
func AppendExtended(dst []byte, extID uint8, fill func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(Extended), extID)
	dst = fill(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
