package wire

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestAllowedFastSetBEP6Vectors(t *testing.T) {
	var ih [20]byte
	for i := range ih {
		ih[i] = 0xaa
	}
	ip := netip.MustParseAddr("80.4.4.200")
	if got, want := AllowedFastSet(7, ip, ih, 1313), []uint32{1059, 431, 808, 1217, 287, 376, 1188}; !reflect.DeepEqual(got, want) {
		t.Errorf("k=7: %v, want %v", got, want)
	}
	if got, want := AllowedFastSet(9, ip, ih, 1313), []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}; !reflect.DeepEqual(got, want) {
		t.Errorf("k=9: %v, want %v", got, want)
	}
	// same /24 gives the same set; mapped form is treated as IPv4
	if got := AllowedFastSet(7, netip.MustParseAddr("::ffff:80.4.4.1"), ih, 1313); !reflect.DeepEqual(got, []uint32{1059, 431, 808, 1217, 287, 376, 1188}) {
		t.Errorf("same /24: %v", got)
	}
}

func TestAllowedFastSetEdges(t *testing.T) {
	var ih [20]byte
	ip := netip.MustParseAddr("10.1.2.3")
	if got := AllowedFastSet(10, ip, ih, 3); len(got) != 3 {
		t.Errorf("k > pieces: %v", got)
	}
	for _, got := range [][]uint32{AllowedFastSet(0, ip, ih, 10), AllowedFastSet(3, ip, ih, 0), AllowedFastSet(3, netip.Addr{}, ih, 10)} {
		if got != nil {
			t.Errorf("want nil, got %v", got)
		}
	}
	v6 := AllowedFastSet(8, netip.MustParseAddr("2001:db8:1:2::1"), ih, 1000)
	if len(v6) != 8 || !reflect.DeepEqual(v6, AllowedFastSet(8, netip.MustParseAddr("2001:db8:1:2::ffff"), ih, 1000)) {
		t.Errorf("v6 set not stable within a /64: %v", v6)
	}
	seen := map[uint32]bool{}
	for _, p := range AllowedFastSet(50, ip, ih, 60) {
		if p >= 60 || seen[p] {
			t.Fatalf("bad or duplicate index %d", p)
		}
		seen[p] = true
	}
}
