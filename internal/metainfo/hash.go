package metainfo

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// Hash is a SHA-1 info-hash (BitTorrent v1).
type Hash [20]byte

// String returns the hash as 40 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash accepts the two forms an info-hash takes in the wild: 40 hex
// digits (either case) or 32 base32 characters (old magnet links).
func ParseHash(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return Hash{}, fmt.Errorf("metainfo: info-hash %q: not hex: %w", s, err)
		}
		return h, nil
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil || len(b) != 20 {
			return Hash{}, fmt.Errorf("metainfo: info-hash %q: not base32", s)
		}
		copy(h[:], b)
		return h, nil
	}
	return Hash{}, fmt.Errorf("metainfo: info-hash %q: want 40 hex or 32 base32 characters, got %d", s, len(s))
}
