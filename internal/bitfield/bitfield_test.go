package bitfield

import "testing"

func TestBitfield(t *testing.T) {
	f := New(10)
	f.Set(0)
	f.Set(9)
	f.Set(10) // ignored
	if !f.Has(0) || !f.Has(9) || f.Has(1) || f.Has(10) || f.Count() != 2 {
		t.Fatalf("bits wrong: %08b", f.Bytes())
	}
	if f.Bytes()[0] != 0x80 || f.Bytes()[1] != 0x40 {
		t.Fatalf("wire layout wrong: %08b", f.Bytes())
	}
	f.SetAll()
	if !f.All() || f.Bytes()[1] != 0xc0 {
		t.Fatalf("SetAll: %08b", f.Bytes())
	}
	if _, err := FromBytes([]byte{0xff, 0xc1}, 10); err == nil {
		t.Fatal("spare bit accepted")
	}
	if _, err := FromBytes([]byte{0xff}, 10); err == nil {
		t.Fatal("short bitfield accepted")
	}
	g, err := FromBytes([]byte{0xff, 0xc0}, 10)
	if err != nil || !g.All() {
		t.Fatalf("FromBytes: %v", err)
	}
}
