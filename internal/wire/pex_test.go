package wire

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestPexV4V6(t *testing.T) {
	m := PexMsg{
		Added: []netip.AddrPort{
			netip.MustParseAddrPort("10.0.0.1:6881"),
			netip.MustParseAddrPort("[2001:db8::1]:51413"),
			netip.MustParseAddrPort("[::ffff:192.168.1.2]:80"), // mapped: goes to "added"
		},
		AddedFlags: []byte{PexSeed | PexUTP, PexReachable, PexPrefersEncryption},
		Dropped: []netip.AddrPort{
			netip.MustParseAddrPort("[2001:db8::2]:1"),
			netip.MustParseAddrPort("1.2.3.4:5"),
		},
	}
	b := m.Marshal()
	want := "d5:added12:\x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\x02\x00\x50" +
		"7:added.f2:\x06\x01" +
		"6:added618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xc8\xd5" +
		"8:added6.f1:\x10" +
		"7:dropped6:\x01\x02\x03\x04\x00\x05" +
		"8:dropped618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01e"
	if string(b) != want {
		t.Fatalf("Marshal = %q\nwant      %q", b, want)
	}
	got, err := ParsePex(b)
	if err != nil {
		t.Fatal(err)
	}
	wantMsg := PexMsg{
		Added: []netip.AddrPort{
			netip.MustParseAddrPort("10.0.0.1:6881"),
			netip.MustParseAddrPort("192.168.1.2:80"),
			netip.MustParseAddrPort("[2001:db8::1]:51413"),
		},
		AddedFlags: []byte{PexSeed | PexUTP, PexPrefersEncryption, PexReachable},
		Dropped: []netip.AddrPort{
			netip.MustParseAddrPort("1.2.3.4:5"),
			netip.MustParseAddrPort("[2001:db8::2]:1"),
		},
	}
	if !reflect.DeepEqual(got, wantMsg) {
		t.Fatalf("Parse = %+v\nwant    %+v", got, wantMsg)
	}
	if empty := (PexMsg{}).Marshal(); string(empty) != "d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e" {
		t.Fatalf("empty = %q", empty)
	}
}

func TestPexLenientAndTruncated(t *testing.T) {
	// keys out of order, flags missing for the second peer, unknown key
	in := "d7:dropped0:5:added12:\x01\x01\x01\x01\x00\x01\x02\x02\x02\x02\x00\x027:added.f1:\x021:xi1ee"
	m, err := ParsePex([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Added) != 2 || !reflect.DeepEqual(m.AddedFlags, []byte{PexSeed, 0}) || m.Dropped != nil {
		t.Fatalf("got %+v", m)
	}
	// 150 v4 + 100 v6 added: truncated to 200 (all v4, then 50 v6)
	var big PexMsg
	for i := 0; i < 150; i++ {
		big.Added = append(big.Added, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1))
	}
	for i := 0; i < 100; i++ {
		big.Added = append(big.Added, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 14: byte(i >> 8), 15: byte(i)}), 2))
	}
	d := pexDict{}
	for _, ap := range big.Added {
		if ap.Addr().Is4() {
			d.Added = AppendCompactPeer(d.Added, ap)
		} else {
			d.Added6 = AppendCompactPeer(d.Added6, ap)
		}
	}
	raw := marshalPexDict(t, d)
	got, err := ParsePex(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Added) != MaxPexPeers || len(got.AddedFlags) != MaxPexPeers || !reflect.DeepEqual(got.Added, big.Added[:MaxPexPeers]) {
		t.Fatalf("parsed %d added, want the first %d", len(got.Added), MaxPexPeers)
	}
	if again, _ := ParsePex(big.Marshal()); !reflect.DeepEqual(again.Added, big.Added[:MaxPexPeers]) {
		t.Fatalf("Marshal did not truncate to the first %d", MaxPexPeers)
	}
}

func TestPexBad(t *testing.T) {
	for _, in := range []string{"", "le", "d5:added5:abcdee", "d6:added65:abcdee", "d7:dropped1:xe", "d8:dropped61:xe",
		"d5:addedi1ee", "d5:added" + strings.Repeat("9", 12) + ":e"} {
		if _, err := ParsePex([]byte(in)); !errors.Is(err, ErrBadPex) {
			t.Errorf("%q: err %v, want ErrBadPex", in, err)
		}
	}
}

func marshalPexDict(t *testing.T, d pexDict) []byte {
	t.Helper()
	b, err := bencodeMarshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
