// Package bitfield is the bit set of pieces shared by the wire protocol,
// the picker and storage. Bit 0 is the high bit of byte 0, as on the wire.
package bitfield

import (
	"errors"
	"math/bits"
)

// Bitfield is a fixed-length set of bits. The zero value holds no bits.
type Bitfield struct {
	b []byte
	n int
}

// New returns an empty bitfield of n bits.
func New(n int) Bitfield {
	return Bitfield{b: make([]byte, (n+7)/8), n: n}
}

// ErrLength is returned by FromBytes when the byte count or spare bits do not fit n.
var ErrLength = errors.New("bitfield: wrong length or spare bits set")

// FromBytes copies a wire bitfield of n bits. It rejects a wrong byte count
// and set spare bits in the last byte (BEP 3 says peers must drop such a peer).
func FromBytes(p []byte, n int) (Bitfield, error) {
	if len(p) != (n+7)/8 {
		return Bitfield{}, ErrLength
	}
	if n%8 != 0 && p[len(p)-1]&(0xff>>(n%8)) != 0 {
		return Bitfield{}, ErrLength
	}
	return Bitfield{b: append([]byte(nil), p...), n: n}, nil
}

func (f Bitfield) Len() int { return f.n }

// Has reports bit i; out of range is false.
func (f Bitfield) Has(i int) bool {
	if i < 0 || i >= f.n {
		return false
	}
	return f.b[i>>3]&(0x80>>(i&7)) != 0
}

// Set sets bit i; out of range is ignored.
func (f Bitfield) Set(i int) {
	if i >= 0 && i < f.n {
		f.b[i>>3] |= 0x80 >> (i & 7)
	}
}

// Clear clears bit i.
func (f Bitfield) Clear(i int) {
	if i >= 0 && i < f.n {
		f.b[i>>3] &^= 0x80 >> (i & 7)
	}
}

// SetAll sets every bit.
func (f Bitfield) SetAll() {
	for i := range f.b {
		f.b[i] = 0xff
	}
	if f.n%8 != 0 {
		f.b[len(f.b)-1] = 0xff << (8 - f.n%8)
	}
}

// Count returns the number of set bits.
func (f Bitfield) Count() int {
	c := 0
	for _, x := range f.b {
		c += bits.OnesCount8(x)
	}
	return c
}

// All reports whether every bit is set.
func (f Bitfield) All() bool { return f.Count() == f.n }

// Bytes returns the wire form (shared, do not modify).
func (f Bitfield) Bytes() []byte { return f.b }

// Clone returns an independent copy.
func (f Bitfield) Clone() Bitfield {
	return Bitfield{b: append([]byte(nil), f.b...), n: f.n}
}
