package wire

import (
	"errors"
	"fmt"
	"math"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// ExtHandshakeID is the ext id of the BEP 10 extension handshake.
//
// Extended message layout (message id 20):
//
//	<length u32><20><ext id u8><payload>
//
// ext id 0 is the handshake, whose payload is a bencoded dictionary; its
// "m" entry maps extension names to the ext ids the SENDER wants to receive
// them under (0 = disabled). All other ext ids are those the receiver
// announced in its own "m".
const ExtHandshakeID = 0

// Extension names announced in the "m" dictionary.
const (
	ExtMetadata  = "ut_metadata"  // BEP 9
	ExtPex       = "ut_pex"       // BEP 11
	ExtHolepunch = "ut_holepunch" // BEP 55
)

// MaxExtHandshakeLen caps the payload ParseExtHandshake accepts.
const MaxExtHandshakeLen = 64 << 10

// ErrBadExtHandshake is returned (wrapped) for an extension handshake that
// is not a bencoded dictionary or is too large.
var ErrBadExtHandshake = errors.New("wire: bad extension handshake")

// peerLimits bound bencode from peers: small, and lenient about key order
// (several clients send unsorted dictionaries).
var peerLimits = bencode.Limits{MaxDepth: 8, MaxStringLen: 64 << 10, MaxItems: 2048, Lenient: true}

// ExtHandshake is the BEP 10 extension handshake dictionary.
type ExtHandshake struct {
	M            map[string]int `bencode:"m"`
	V            string         `bencode:"v,omitempty"`             // client name and version
	P            int            `bencode:"p,omitempty"`             // listen port
	YourIP       []byte         `bencode:"yourip,omitempty"`        // our address as the peer sees it, 4 or 16 bytes
	IPv4         []byte         `bencode:"ipv4,omitempty"`          // the sender's IPv4 address, 4 bytes
	IPv6         []byte         `bencode:"ipv6,omitempty"`          // the sender's IPv6 address, 16 bytes
	Reqq         int            `bencode:"reqq,omitempty"`          // outstanding requests the sender allows
	MetadataSize int            `bencode:"metadata_size,omitempty"` // BEP 9 info dictionary size
	UploadOnly   int            `bencode:"upload_only,omitempty"`   // 1 if the sender only uploads
}

// extHandshakeIn is what ParseExtHandshake decodes: every field is any, so
// a value of the wrong type is dropped rather than failing the handshake.
type extHandshakeIn struct {
	M            any `bencode:"m"`
	V            any `bencode:"v"`
	P            any `bencode:"p"`
	YourIP       any `bencode:"yourip"`
	IPv4         any `bencode:"ipv4"`
	IPv6         any `bencode:"ipv6"`
	Reqq         any `bencode:"reqq"`
	MetadataSize any `bencode:"metadata_size"`
	UploadOnly   any `bencode:"upload_only"`
}

// ParseExtHandshake decodes an extension handshake payload (after the ext id
// byte). It is lenient with other clients: unknown keys, out-of-order keys
// and bytes after the dictionary are ignored, and a known key whose value
// has the wrong type or is out of range is dropped (left zero): "m" entries
// that are not integers in 0..255, "p" outside 1..65535, addresses of the
// wrong length, "metadata_size" outside 1..MaxMetadataSize, negative
// "reqq". UploadOnly is normalised to 0 or 1. It fails only if the payload
// is larger than MaxExtHandshakeLen or is not a bencoded dictionary. M is
// never nil.
func ParseExtHandshake(payload []byte) (ExtHandshake, error) {
	h := ExtHandshake{M: map[string]int{}}
	if len(payload) > MaxExtHandshakeLen {
		return h, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadExtHandshake, len(payload), MaxExtHandshakeLen)
	}
	var in extHandshakeIn
	if _, err := bencode.UnmarshalPrefix(payload, &in, peerLimits); err != nil {
		return h, fmt.Errorf("%w: %w", ErrBadExtHandshake, err)
	}
	if m, ok := in.M.(map[string]any); ok {
		for name, v := range m {
			if id, ok := intIn(v, 0, 255); ok {
				h.M[name] = id
			}
		}
	}
	if s, ok := in.V.(string); ok {
		h.V = s
	}
	h.P, _ = intIn(in.P, 1, math.MaxUint16)
	h.YourIP = bytesOfLen(in.YourIP, 4, 16)
	h.IPv4 = bytesOfLen(in.IPv4, 4, 4)
	h.IPv6 = bytesOfLen(in.IPv6, 16, 16)
	h.Reqq, _ = intIn(in.Reqq, 0, math.MaxInt32)
	h.MetadataSize, _ = intIn(in.MetadataSize, 1, MaxMetadataSize)
	if u, ok := in.UploadOnly.(int64); ok && u != 0 {
		h.UploadOnly = 1
	}
	return h, nil
}

// intIn returns v as an int if it is a bencode integer within [lo, hi].
func intIn(v any, lo, hi int64) (int, bool) {
	n, ok := v.(int64)
	if !ok || n < lo || n > hi {
		return 0, false
	}
	return int(n), true
}

// bytesOfLen returns v as bytes if it is a string of length a or b.
func bytesOfLen(v any, a, b int) []byte {
	s, ok := v.(string)
	if !ok || (len(s) != a && len(s) != b) {
		return nil
	}
	return []byte(s)
}

// Marshal encodes h canonically (sorted keys; zero fields omitted; "m"
// always present, empty if nil).
func (h ExtHandshake) Marshal() []byte {
	if h.M == nil {
		h.M = map[string]int{}
	}
	return bencode.MustMarshal(h)
}
