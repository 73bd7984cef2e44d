package nat

import (
	"net/netip"
	"testing"
)

func FuzzRendezvousFrame(f *testing.F) {
	for _, m := range []rvMsg{{typ: rvRegister}, {typ: rvPunch, addr: netip.MustParseAddrPort("1.2.3.4:5")}, {typ: rvError, text: "x"}} {
		b, _ := m.encode()
		f.Add(b[2:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		m, err := decodeRV(b)
		if err != nil {
			return
		}
		out, err := m.encode()
		if err != nil {
			t.Fatalf("%x decoded to %+v but does not encode: %v", b, m, err)
		}
		if m2, err := decodeRV(out[2:]); err != nil || m2 != m {
			t.Fatalf("%x: %+v re-decodes as %+v, %v", b, m, m2, err)
		}
	})
}
