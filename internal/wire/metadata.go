package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// BEP 9 ut_metadata. The extended payload (after the ext id byte, which is
// the receiver's m["ut_metadata"]) is a bencoded dictionary, followed for a
// data message by the raw bytes of the metadata piece:
//
//	request: d8:msg_typei0e5:piecei<n>ee
//	data:    d8:msg_typei1e5:piecei<n>e10:total_sizei<size>ee<piece bytes>
//	reject:  d8:msg_typei2e5:piecei<n>ee
//
// The metadata (the info dictionary) is split into MetadataPieceLen pieces;
// every piece but the last is exactly MetadataPieceLen bytes.
const (
	MetadataPieceLen = 16384
	MaxMetadataSize  = 16 << 20
	// maxMetadataPieces is the number of pieces of the largest metadata.
	maxMetadataPieces = MaxMetadataSize / MetadataPieceLen
)

// MetadataMsgType is the msg_type of a ut_metadata message.
type MetadataMsgType int

// ut_metadata message types.
const (
	MetadataRequest MetadataMsgType = 0
	MetadataData    MetadataMsgType = 1
	MetadataReject  MetadataMsgType = 2
)

// String returns the type name.
func (t MetadataMsgType) String() string {
	switch t {
	case MetadataRequest:
		return "request"
	case MetadataData:
		return "data"
	case MetadataReject:
		return "reject"
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// Errors of ParseMetadataMsg, returned wrapped with detail.
var (
	// ErrBadMetadataMsg: malformed or inconsistent ut_metadata message.
	ErrBadMetadataMsg = errors.New("wire: bad ut_metadata message")
	// ErrUnknownMetadataMsg: a msg_type this package does not know; BEP 9
	// asks receivers to ignore such messages, so callers should not drop
	// the peer for it.
	ErrUnknownMetadataMsg = errors.New("wire: unknown ut_metadata msg_type")
)

// MetadataMsg is one ut_metadata message. For a data message Data holds
// the piece bytes; from ParseMetadataMsg it aliases the payload.
type MetadataMsg struct {
	Type      MetadataMsgType
	Piece     int
	TotalSize int // data messages only
	Data      []byte
}

type metadataDict struct {
	MsgType   *int64 `bencode:"msg_type"`
	Piece     *int64 `bencode:"piece"`
	TotalSize *int64 `bencode:"total_size"`
}

var metadataLimits = bencode.Limits{MaxDepth: 4, MaxStringLen: 1024, MaxItems: 64, Lenient: true}

// MetadataPieceSize returns the length of piece i of metadata of totalSize
// bytes, or 0 if there is no such piece.
func MetadataPieceSize(totalSize, i int) int {
	if totalSize <= 0 || i < 0 || i >= (totalSize+MetadataPieceLen-1)/MetadataPieceLen {
		return 0
	}
	return min(MetadataPieceLen, totalSize-i*MetadataPieceLen)
}

// ParseMetadataMsg decodes a ut_metadata extended payload. It checks that
// msg_type and piece are present, that piece is below
// MaxMetadataSize/MetadataPieceLen, and for data messages that total_size
// is in 1..MaxMetadataSize, that the piece lies within it and that the
// trailing data is exactly that piece's length (16 KiB, or less for the last
// piece). Request and reject messages must have nothing after the
// dictionary. Unknown keys are ignored. An unknown msg_type gives
// ErrUnknownMetadataMsg (with Type and Piece filled in).
func ParseMetadataMsg(payload []byte) (MetadataMsg, error) {
	var m MetadataMsg
	var d metadataDict
	n, err := bencode.UnmarshalPrefix(payload, &d, metadataLimits)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrBadMetadataMsg, err)
	}
	if d.MsgType == nil || d.Piece == nil {
		return m, fmt.Errorf("%w: missing msg_type or piece", ErrBadMetadataMsg)
	}
	if *d.Piece < 0 || *d.Piece >= maxMetadataPieces {
		return m, fmt.Errorf("%w: piece %d out of range", ErrBadMetadataMsg, *d.Piece)
	}
	m.Piece = int(*d.Piece)
	rest := payload[n:]
	switch t := *d.MsgType; t {
	case int64(MetadataRequest), int64(MetadataReject):
		m.Type = MetadataMsgType(t)
		if len(rest) != 0 {
			return m, fmt.Errorf("%w: %d bytes after %s dictionary", ErrBadMetadataMsg, len(rest), m.Type)
		}
		return m, nil
	case int64(MetadataData):
		m.Type = MetadataData
	default:
		if t >= math.MinInt32 && t <= math.MaxInt32 {
			m.Type = MetadataMsgType(t)
		}
		return m, fmt.Errorf("%w: %d", ErrUnknownMetadataMsg, t)
	}
	if d.TotalSize == nil {
		return m, fmt.Errorf("%w: data message without total_size", ErrBadMetadataMsg)
	}
	if *d.TotalSize <= 0 || *d.TotalSize > MaxMetadataSize {
		return m, fmt.Errorf("%w: total_size %d out of range 1..%d", ErrBadMetadataMsg, *d.TotalSize, MaxMetadataSize)
	}
	m.TotalSize = int(*d.TotalSize)
	want := MetadataPieceSize(m.TotalSize, m.Piece)
	if want == 0 {
		return m, fmt.Errorf("%w: piece %d beyond total_size %d", ErrBadMetadataMsg, m.Piece, m.TotalSize)
	}
	if len(rest) != want {
		return m, fmt.Errorf("%w: piece %d has %d data bytes, want %d", ErrBadMetadataMsg, m.Piece, len(rest), want)
	}
	m.Data = rest
	return m, nil
}

// AppendMetadataMsg appends the ut_metadata extended payload for m (the
// dictionary, plus m.Data for a data message) to dst. total_size is
// written only for data messages. It does not validate m.
func AppendMetadataMsg(dst []byte, m MetadataMsg) []byte {
	dst = append(dst, "d8:msg_typei"...)
	dst = strconv.AppendInt(dst, int64(m.Type), 10)
	dst = append(dst, "e5:piecei"...)
	dst = strconv.AppendInt(dst, int64(m.Piece), 10)
	dst = append(dst, 'e')
	if m.Type == MetadataData {
		dst = append(dst, "10:total_sizei"...)
		dst = strconv.AppendInt(dst, int64(m.TotalSize), 10)
		dst = append(dst, 'e')
	}
	dst = append(dst, 'e')
	if m.Type == MetadataData {
		dst = append(dst, m.Data...)
	}
	return dst
}
