package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

var bencodeMarshal = bencode.Marshal

func TestCompactPeers(t *testing.T) {
	v4 := []byte{1, 2, 3, 4, 0x1a, 0xe1, 255, 255, 255, 255, 0, 0}
	got, err := ParseCompactPeers(v4, false, 0)
	want := []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:6881"), netip.MustParseAddrPort("255.255.255.255:0")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("v4: %v %v", got, err)
	}
	var enc []byte
	for _, ap := range got {
		enc = AppendCompactPeer(enc, ap)
	}
	if !bytes.Equal(enc, v4) {
		t.Fatalf("re-encoded % x", enc)
	}
	v6 := append(netip.MustParseAddr("2001:db8::7").AsSlice(), 0, 80)
	v6 = append(v6, netip.MustParseAddr("::ffff:9.8.7.6").AsSlice()...)
	v6 = append(v6, 1, 0)
	got, err = ParseCompactPeers(v6, true, 0)
	want = []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::7]:80"), netip.MustParseAddrPort("9.8.7.6:256")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("v6: %v %v", got, err)
	}
	if b := AppendCompactPeer(nil, netip.MustParseAddrPort("[::ffff:9.8.7.6]:256")); !bytes.Equal(b, []byte{9, 8, 7, 6, 1, 0}) {
		t.Fatalf("mapped not unmapped: % x", b)
	}
	if b := AppendCompactPeer(nil, netip.MustParseAddrPort("[fe80::1%eth0]:1")); len(b) != CompactPeerLen6 {
		t.Fatalf("zoned v6: %d bytes", len(b))
	}
	if b := AppendCompactPeer([]byte{1}, netip.AddrPort{}); !bytes.Equal(b, []byte{1}) {
		t.Fatalf("invalid addr appended % x", b)
	}
	if got, err := ParseCompactPeers(v4, false, 1); err != nil || len(got) != 1 {
		t.Fatalf("cap 1: %v %v", got, err)
	}
	if got, err := ParseCompactPeers(nil, true, 5); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, c := range []struct {
		b  []byte
		v6 bool
	}{{v4[:5], false}, {v4[:7], false}, {v4, true}, {v6[:17], true}} {
		if _, err := ParseCompactPeers(c.b, c.v6, 0); !errors.Is(err, ErrCompactLen) {
			t.Errorf("%d bytes v6=%v: err %v", len(c.b), c.v6, err)
		}
	}
}
