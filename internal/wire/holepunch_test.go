package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestHolepunchCodec(t *testing.T) {
	for _, tc := range []struct {
		h    Holepunch
		wire []byte
	}{
		{Holepunch{Type: HolepunchRendezvous, Addr: netip.MustParseAddrPort("1.2.3.4:6881")},
			[]byte{0, 0, 1, 2, 3, 4, 0x1a, 0xe1, 0, 0, 0, 0}},
		{Holepunch{Type: HolepunchError, Addr: netip.MustParseAddrPort("[::ffff:1.2.3.4]:1"), ErrCode: HolepunchNoSupport},
			[]byte{2, 0, 1, 2, 3, 4, 0, 1, 0, 0, 0, 3}},
		{Holepunch{Type: HolepunchConnect, Addr: netip.MustParseAddrPort("[2001:db8::1]:443")},
			append(append([]byte{1, 1}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 1, 0xbb, 0, 0, 0, 0)},
	} {
		b, err := tc.h.MarshalBinary()
		if err != nil || !bytes.Equal(b, tc.wire) {
			t.Fatalf("%+v: got %x, %v; want %x", tc.h, b, err, tc.wire)
		}
		var h Holepunch
		if err := h.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		want := tc.h
		want.Addr = netip.AddrPortFrom(want.Addr.Addr().Unmap(), want.Addr.Port())
		if h != want {
			t.Fatalf("round trip: %+v, want %+v", h, want)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {3, 0, 1, 2, 3, 4, 0, 1, 0, 0, 0, 0}, {0, 2, 1, 2, 3, 4, 0, 1, 0, 0, 0, 0},
		{0, 0, 1, 2, 3, 4, 0, 1, 0, 0, 0}, {0, 1, 1, 2, 3, 4, 0, 1, 0, 0, 0, 0}} {
		var h Holepunch
		if err := h.UnmarshalBinary(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
	if _, err := (Holepunch{Type: 9, Addr: netip.MustParseAddrPort("1.2.3.4:1")}).MarshalBinary(); err == nil {
		t.Error("type 9 encoded")
	}
}

func FuzzHolepunch(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 0x1a, 0xe1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Holepunch
		if h.UnmarshalBinary(b) != nil {
			return
		}
		out, err := h.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			if !(b[1] == 1 && h.Addr.Addr().Is4In6()) { // v4-mapped v6 re-encodes as v4
				t.Fatalf("%x -> %+v -> %x, %v", b, h, out, err)
			}
		}
	})
}
