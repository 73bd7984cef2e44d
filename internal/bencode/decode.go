// Package bencode is a strict codec for BitTorrent's bencoding (BEP 3).
//
// Decoding is bounded: nesting depth, string lengths and integer sizes are
// checked before anything is allocated, and input that is not exactly one
// value (trailing bytes) is an error unless the caller asks for a prefix.
// Encoding is canonical: dictionary keys are sorted as raw byte strings.
package bencode

import (
	"errors"
	"fmt"
	"strconv"
)

// Limits bound what a decoder will accept. The zero value means DefaultLimits.
type Limits struct {
	MaxDepth     int // deepest nesting of lists and dictionaries
	MaxStringLen int // longest single byte string
	MaxItems     int // total number of values in one document
	// Lenient accepts dictionaries whose keys are out of order (some peers
	// and trackers send them). Duplicate adjacent keys are still refused.
	// .torrent parsing stays strict: non-canonical input is an error.
	Lenient bool
}

// DefaultLimits suits .torrent files and wire messages: a torrent's pieces
// string can reach tens of MiB for very large content.
var DefaultLimits = Limits{MaxDepth: 64, MaxStringLen: 64 << 20, MaxItems: 4 << 20}

// SyntaxError reports malformed input with the byte offset where it was found.
type SyntaxError struct {
	Offset int
	Msg    string
	// Key is the innermost dictionary key (of a struct field) whose value
	// was malformed or of the wrong type, "" when not inside one; it is
	// part of the message so users learn which field is bad.
	Key string
}

func (e *SyntaxError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("bencode: key %q: %s at offset %d", e.Key, e.Msg, e.Offset)
	}
	return fmt.Sprintf("bencode: %s at offset %d", e.Msg, e.Offset)
}

// ErrTrailing is returned (wrapped) when bytes follow the first complete value.
var ErrTrailing = errors.New("bencode: trailing data after value")

// Kind is the type of a bencoded value.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindInt
	KindString
	KindList
	KindDict
)

// scanner walks raw bencode without building values; used to find value
// boundaries (for RawMessage and the info dictionary) and to validate input.
type scanner struct {
	data  []byte
	pos   int
	lim   Limits
	items int
}

func newScanner(data []byte, lim Limits) *scanner {
	if lim.MaxDepth == 0 {
		lim = DefaultLimits
	}
	return &scanner{data: data, lim: lim}
}

func (s *scanner) errf(format string, a ...any) error {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, a...)}
}

func (s *scanner) peek() (byte, error) {
	if s.pos >= len(s.data) {
		return 0, s.errf("unexpected end of input")
	}
	return s.data[s.pos], nil
}

func (s *scanner) count() error {
	s.items++
	if s.items > s.lim.MaxItems {
		return s.errf("too many values (limit %d)", s.lim.MaxItems)
	}
	return nil
}

// readInt parses "i<digits>e" and returns the value. Canonical form only:
// no leading zeros, no "-0", no '+'.
func (s *scanner) readInt() (int64, error) {
	if err := s.count(); err != nil {
		return 0, err
	}
	start := s.pos
	s.pos++ // 'i'
	end := s.pos
	for end < len(s.data) && s.data[end] != 'e' {
		if end-s.pos > 20 {
			s.pos = end
			return 0, s.errf("integer too long")
		}
		end++
	}
	if end >= len(s.data) {
		s.pos = start
		return 0, s.errf("unterminated integer")
	}
	lit := s.data[s.pos:end]
	if err := checkIntLiteral(lit); err != nil {
		return 0, s.errf("%v", err)
	}
	v, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		return 0, s.errf("integer out of range")
	}
	s.pos = end + 1
	return v, nil
}

func checkIntLiteral(lit []byte) error {
	if len(lit) == 0 {
		return errors.New("empty integer")
	}
	d := lit
	if d[0] == '-' {
		d = d[1:]
		if len(d) == 0 {
			return errors.New("bare minus sign")
		}
		if d[0] == '0' {
			return errors.New("negative zero or leading zero")
		}
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return errors.New("non-digit in integer")
		}
	}
	if len(d) > 1 && d[0] == '0' {
		return errors.New("leading zero in integer")
	}
	return nil
}

// readString parses "<len>:<bytes>" and returns a sub-slice of the input
// (no copy): the length is checked against the input and the limit first.
func (s *scanner) readString() ([]byte, error) {
	if err := s.count(); err != nil {
		return nil, err
	}
	start := s.pos
	n := 0
	digits := 0
	for s.pos < len(s.data) && s.data[s.pos] != ':' {
		c := s.data[s.pos]
		if c < '0' || c > '9' {
			return nil, s.errf("invalid string length")
		}
		if digits == 1 && s.data[start] == '0' {
			return nil, s.errf("leading zero in string length")
		}
		digits++
		if digits > 10 {
			return nil, s.errf("string length too long")
		}
		n = n*10 + int(c-'0')
		s.pos++
	}
	if s.pos >= len(s.data) || digits == 0 {
		s.pos = start
		return nil, s.errf("invalid string length")
	}
	s.pos++ // ':'
	if n > s.lim.MaxStringLen {
		return nil, s.errf("string of %d bytes exceeds limit %d", n, s.lim.MaxStringLen)
	}
	if n > len(s.data)-s.pos {
		return nil, s.errf("string of %d bytes runs past end of input", n)
	}
	b := s.data[s.pos : s.pos+n : s.pos+n]
	s.pos += n
	return b, nil
}

// skip advances over one complete value, checking it fully.
func (s *scanner) skip(depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch {
	case c == 'i':
		_, err := s.readInt()
		return err
	case c >= '0' && c <= '9':
		_, err := s.readString()
		return err
	case c == 'l':
		if depth >= s.lim.MaxDepth {
			return s.errf("nesting deeper than %d", s.lim.MaxDepth)
		}
		if err := s.count(); err != nil {
			return err
		}
		s.pos++
		for {
			c, err := s.peek()
			if err != nil {
				return err
			}
			if c == 'e' {
				s.pos++
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == 'd':
		if depth >= s.lim.MaxDepth {
			return s.errf("nesting deeper than %d", s.lim.MaxDepth)
		}
		if err := s.count(); err != nil {
			return err
		}
		s.pos++
		var prev []byte
		first := true
		for {
			c, err := s.peek()
			if err != nil {
				return err
			}
			if c == 'e' {
				s.pos++
				return nil
			}
			if c < '0' || c > '9' {
				return s.errf("dictionary key is not a string")
			}
			k, err := s.readString()
			if err != nil {
				return err
			}
			if !first && string(k) <= string(prev) && !(s.lim.Lenient && string(k) != string(prev)) {
				if string(k) == string(prev) {
					return s.errf("duplicate dictionary key %q", k)
				}
				return s.errf("dictionary keys not sorted (%q after %q)", k, prev)
			}
			first = false
			prev = k
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	default:
		return s.errf("invalid value type byte %q", c)
	}
}

// Valid reports whether data is exactly one well-formed, canonical value.
func Valid(data []byte) error {
	s := newScanner(data, DefaultLimits)
	if err := s.skip(0); err != nil {
		return err
	}
	if s.pos != len(data) {
		return fmt.Errorf("%w (%d bytes)", ErrTrailing, len(data)-s.pos)
	}
	return nil
}

// ValueLen returns the length of the first complete value in data.
func ValueLen(data []byte) (int, error) {
	s := newScanner(data, DefaultLimits)
	if err := s.skip(0); err != nil {
		return 0, err
	}
	return s.pos, nil
}

// DictField returns the raw bytes of the value stored under key in the
// top-level dictionary data (e.g. the "info" dictionary of a .torrent, whose
// exact bytes define the info-hash). ok is false if the key is absent.
func DictField(data []byte, key string) (raw []byte, ok bool, err error) {
	s := newScanner(data, DefaultLimits)
	c, err := s.peek()
	if err != nil {
		return nil, false, err
	}
	if c != 'd' {
		return nil, false, s.errf("not a dictionary")
	}
	s.pos++
	for {
		c, err := s.peek()
		if err != nil {
			return nil, false, err
		}
		if c == 'e' {
			return nil, false, nil
		}
		k, err := s.readString()
		if err != nil {
			return nil, false, err
		}
		start := s.pos
		if err := s.skip(1); err != nil {
			return nil, false, err
		}
		if string(k) == key {
			return data[start:s.pos:s.pos], true, nil
		}
	}
}
