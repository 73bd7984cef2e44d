package session

import (
	"crypto/sha1"
	"testing"

	"github.com/shoal-p2p/shoal/internal/picker"
)

// TestCulpritsAreOnlyTheSendersOfBadBlocks: three failed attempts of a
// four-block piece, each mixing an honest peer's blocks (0 and 2) with a
// liar's (1 and 3), blame the liar alone once the good copy is known; a
// peer whose only block was right is not blamed, however many failed
// attempts it took part in.
func TestCulpritsAreOnlyTheSendersOfBadBlocks(t *testing.T) {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!@")
	good := blockDigests(data, 16)
	if len(good) != 4 || good[0] != sha1.Sum(data[:16]) || good[3] != sha1.Sum(data[48:]) {
		t.Fatalf("block digests: %x", good)
	}
	junk := sha1.Sum([]byte("junk"))
	const honest, liar, late = picker.PeerID(1), picker.PeerID(2), picker.PeerID(3)
	var list []blockBlame
	for range 3 {
		list = append(list,
			blockBlame{block: 0, peer: honest, digest: good[0]},
			blockBlame{block: 1, peer: liar, digest: junk},
			blockBlame{block: 2, peer: honest, digest: good[2]},
			blockBlame{block: 3, peer: liar, digest: junk})
	}
	list = append(list, blockBlame{block: 3, peer: late, digest: good[3]})
	got := culprits(list, good)
	if len(got) != 1 || got[0].peer != liar {
		t.Fatalf("culprits %+v, want the liar alone", got)
	}
	if got := culprits(list[:2], good); len(got) != 1 || got[0].block != 1 {
		t.Fatalf("one bad block: culprits %+v", got)
	}
	if got := culprits([]blockBlame{{block: 9, peer: liar, digest: junk}}, good); len(got) != 0 {
		t.Fatalf("a block past the piece's end blamed: %+v", got)
	}
	// A short last block is hashed as it is.
	if d := blockDigests(data[:40], 16); len(d) != 3 || d[2] != sha1.Sum(data[32:40]) {
		t.Fatalf("short last block: %x", d)
	}
}
