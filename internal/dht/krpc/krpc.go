// Package krpc holds the KRPC messages of the mainline DHT (BEP 5) and their
// bencoded form, plus the compact node and peer encodings (BEP 5, BEP 32) and
// the BEP 42 "ip" field and BEP 51 sample_infohashes fields.
//
// Every message is one bencoded dictionary in one UDP datagram:
//
//	query:    {"t": <tid>, "y": "q", "q": <method>, "a": {"id": <20 bytes>, ...args}}
//	response: {"t": <tid>, "y": "r", "r": {"id": <20 bytes>, ...values}, "ip": <compact addr>}
//	error:    {"t": <tid>, "y": "e", "e": [<code>, <message>]}
//
// Decoding is bounded: a datagram larger than MaxPacketSize is refused before
// it is parsed, strings are capped at MaxPacketSize, the number of bencode
// values is capped, and compact lists are cut to MaxNodes / MaxValues.
package krpc

import (
	"errors"
	"fmt"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// Message kinds (the "y" key).
const (
	KindQuery    = "q"
	KindResponse = "r"
	KindError    = "e"
)

// Query methods (the "q" key).
const (
	MethodPing             = "ping"
	MethodFindNode         = "find_node"
	MethodGetPeers         = "get_peers"
	MethodAnnouncePeer     = "announce_peer"
	MethodSampleInfohashes = "sample_infohashes" // BEP 51
)

// Error codes (BEP 5).
const (
	ErrCodeGeneric  = 201
	ErrCodeServer   = 202
	ErrCodeProtocol = 203
	ErrCodeMethod   = 204
)

// Size limits.
const (
	// MaxPacketSize is the largest datagram decoded; real KRPC packets fit
	// in one Ethernet MTU, and what we send is kept below SendBudget.
	MaxPacketSize = 2048
	// SendBudget is the most bytes a response we build may take.
	SendBudget = 1400
	// MaxTIDLen bounds a transaction id.
	MaxTIDLen = 32
	// MaxNodes is the most compact nodes taken from one "nodes"/"nodes6" key.
	MaxNodes = 16
	// MaxValues is the most peers taken from one "values" list.
	MaxValues = 200
	// MaxSamples is the most info-hashes taken from one "samples" string.
	MaxSamples = 64
	// MaxItems bounds the bencode values in one message.
	MaxItems = 512
)

var limits = bencode.Limits{MaxDepth: 6, MaxStringLen: MaxPacketSize, MaxItems: MaxItems, Lenient: true}

// Msg is one KRPC message. Exactly one of A, R, E is set, matching Y.
type Msg struct {
	T  string  `bencode:"t"`
	Y  string  `bencode:"y"`
	Q  string  `bencode:"q,omitempty"`
	A  *Args   `bencode:"a,omitempty"`
	R  *Return `bencode:"r,omitempty"`
	E  *Error  `bencode:"e,omitempty"`
	V  string  `bencode:"v,omitempty"`  // client version
	IP string  `bencode:"ip,omitempty"` // BEP 42: the requester's address as the responder sees it (compact)
	RO int     `bencode:"ro,omitempty"` // BEP 43: read-only node
}

// Args are the arguments of a query.
type Args struct {
	ID          [20]byte `bencode:"id"`
	Target      [20]byte `bencode:"target,omitempty"`
	InfoHash    [20]byte `bencode:"info_hash,omitempty"`
	Port        int      `bencode:"port,omitempty"`
	ImpliedPort int      `bencode:"implied_port,omitempty"`
	Token       string   `bencode:"token,omitempty"`
	Want        []string `bencode:"want,omitempty"` // BEP 32: "n4", "n6"
}

// Return is the body of a response.
type Return struct {
	ID       [20]byte `bencode:"id"`
	Nodes    string   `bencode:"nodes,omitempty"`   // compact node info, 26 bytes each
	Nodes6   string   `bencode:"nodes6,omitempty"`  // compact node info, 38 bytes each
	Values   []string `bencode:"values,omitempty"`  // compact peers, 6 or 18 bytes each
	Token    string   `bencode:"token,omitempty"`   // get_peers
	Samples  string   `bencode:"samples,omitempty"` // BEP 51: 20-byte info-hashes
	Interval *int     `bencode:"interval,omitempty"`
	Num      *int     `bencode:"num,omitempty"`
}

// Error is the body of an error message: a list [code, message].
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("krpc error %d: %s", e.Code, e.Msg) }

// MarshalBencode encodes the error as [code, message].
func (e Error) MarshalBencode() ([]byte, error) {
	return bencode.Marshal([]any{e.Code, e.Msg})
}

// UnmarshalBencode decodes [code, message]; a missing message is allowed.
func (e *Error) UnmarshalBencode(b []byte) error {
	var l []any
	if err := bencode.UnmarshalLimits(b, &l, limits); err != nil {
		return fmt.Errorf("krpc: error body: %w", err)
	}
	if len(l) < 1 {
		return errors.New("krpc: empty error list")
	}
	code, ok := l[0].(int64)
	if !ok {
		return errors.New("krpc: error code is not an integer")
	}
	e.Code = int(code)
	if len(l) > 1 {
		if s, ok := l[1].(string); ok {
			e.Msg = s
		}
	}
	return nil
}

// Encode returns the bencoded message.
func Encode(m *Msg) ([]byte, error) {
	b, err := bencode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("krpc: encode: %w", err)
	}
	return b, nil
}

// Decode parses one datagram and checks the message's shape: a transaction
// id, a known kind with its body, and a query method.
func Decode(b []byte) (*Msg, error) {
	if len(b) > MaxPacketSize {
		return nil, fmt.Errorf("krpc: packet of %d bytes exceeds %d", len(b), MaxPacketSize)
	}
	var m Msg
	if err := bencode.UnmarshalLimits(b, &m, limits); err != nil {
		return nil, fmt.Errorf("krpc: decode: %w", err)
	}
	if len(m.T) == 0 || len(m.T) > MaxTIDLen {
		return nil, fmt.Errorf("krpc: transaction id of %d bytes", len(m.T))
	}
	switch m.Y {
	case KindQuery:
		if m.A == nil {
			return nil, errors.New("krpc: query without arguments")
		}
		if m.Q == "" {
			return nil, errors.New("krpc: query without method")
		}
	case KindResponse:
		if m.R == nil {
			return nil, errors.New("krpc: response without body")
		}
	case KindError:
		if m.E == nil {
			return nil, errors.New("krpc: error without body")
		}
	default:
		return nil, fmt.Errorf("krpc: unknown message kind %q", m.Y)
	}
	// an empty list and an absent one mean the same; keep one form
	if m.A != nil && len(m.A.Want) == 0 {
		m.A.Want = nil
	}
	if m.R != nil && len(m.R.Values) == 0 {
		m.R.Values = nil
	}
	return &m, nil
}
