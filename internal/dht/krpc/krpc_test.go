package krpc

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func id(c byte) [20]byte {
	var b [20]byte
	for i := range b {
		b[i] = c
	}
	return b
}

func TestDecodeBEP5Examples(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Msg
	}{
		{"ping query", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
			Msg{T: "aa", Y: "q", Q: "ping", A: &Args{ID: [20]byte([]byte("abcdefghij0123456789"))}}},
		{"ping response", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
			Msg{T: "aa", Y: "r", R: &Return{ID: [20]byte([]byte("mnopqrstuvwxyz123456"))}}},
		{"error", "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
			Msg{T: "aa", Y: "e", E: &Error{Code: 201, Msg: "A Generic Error Ocurred"}}},
		{"announce", "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
			Msg{T: "aa", Y: "q", Q: "announce_peer", A: &Args{ID: [20]byte([]byte("abcdefghij0123456789")),
				InfoHash: [20]byte([]byte("mnopqrstuvwxyz123456")), ImpliedPort: 1, Port: 6881, Token: "aoeusnth"}}},
		// keys out of order, as some clients send them
		{"lenient order", "d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:abcdefghij0123456789ee",
			Msg{T: "aa", Y: "q", Q: "ping", A: &Args{ID: [20]byte([]byte("abcdefghij0123456789"))}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*m, tc.want) {
				t.Fatalf("got %+v want %+v", m, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	bad := []string{
		"",
		"le",
		"d1:t0:1:y1:qe",   // empty tid
		"d1:t2:aa1:y1:qe", // query without args
		"d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe", // no method
		"d1:t2:aa1:y1:re",                      // response without body
		"d1:t2:aa1:y1:xe",                      // unknown kind
		"d1:t2:aa1:y1:e1:ei201ee",              // error body not a list
		"d1:rd2:id3:abce1:t2:aa1:y1:re",        // short id
		"d1:t2:aa1:t2:bb1:y1:re",               // duplicate key
		"d1:t" + strings.Repeat("9", 30) + ":", // absurd length
		"d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:abcdefghij0123456789ee" + "x", // trailing
	}
	for _, in := range bad {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted", in)
		}
	}
	big := make([]byte, MaxPacketSize+1)
	if _, err := Decode(big); err == nil {
		t.Error("oversized packet accepted")
	}
}

func TestRoundTrip(t *testing.T) {
	ival, num := 300, 7
	msgs := []Msg{
		{T: "\x00\x01", Y: "q", Q: MethodGetPeers, A: &Args{ID: id(1), InfoHash: id(2), Want: []string{"n4", "n6"}}},
		{T: "zz", Y: "r", R: &Return{ID: id(3), Nodes: EncodeNodes([]NodeInfo{{ID: id(4), Addr: netip.MustParseAddrPort("1.2.3.4:5")}}, false),
			Values: EncodePeers([]netip.AddrPort{netip.MustParseAddrPort("9.8.7.6:6881")}), Token: "tok"},
			IP: string(AppendAddr(nil, netip.MustParseAddrPort("5.6.7.8:9")))},
		{T: "s", Y: "r", R: &Return{ID: id(5), Samples: string(bytes.Repeat([]byte{7}, 40)), Interval: &ival, Num: &num}},
		{T: "e", Y: "e", E: &Error{Code: ErrCodeProtocol, Msg: "bad token"}},
	}
	for _, m := range msgs {
		b, err := Encode(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !reflect.DeepEqual(*got, m) {
			t.Fatalf("round trip of %q: got %+v want %+v", b, got, m)
		}
	}
}

func TestCompact(t *testing.T) {
	nodes := []NodeInfo{
		{ID: id(1), Addr: netip.MustParseAddrPort("10.0.0.1:6881")},
		{ID: id(2), Addr: netip.MustParseAddrPort("[2001:db8::1]:6882")},
		{ID: id(3), Addr: netip.MustParseAddrPort("127.0.0.1:1")},
	}
	s4 := EncodeNodes(nodes, false)
	if len(s4) != 2*CompactNode4 {
		t.Fatalf("v4 nodes %d bytes", len(s4))
	}
	got, err := ParseNodes(s4, false)
	if err != nil || len(got) != 2 || got[0] != nodes[0] || got[1] != nodes[2] {
		t.Fatalf("ParseNodes v4 = %v, %v", got, err)
	}
	s6 := EncodeNodes(nodes, true)
	got, err = ParseNodes(s6, true)
	if err != nil || len(got) != 1 || got[0] != nodes[1] {
		t.Fatalf("ParseNodes v6 = %v, %v", got, err)
	}
	if _, err := ParseNodes(s4[:25], false); err == nil {
		t.Fatal("truncated nodes accepted")
	}
	// more than MaxNodes entries are cut
	many := strings.Repeat(s4[:CompactNode4], MaxNodes+5)
	got, _ = ParseNodes(many, false)
	if len(got) != MaxNodes {
		t.Fatalf("got %d nodes, want cap %d", len(got), MaxNodes)
	}
	// port 0 is dropped
	zero := strings.Repeat("\x09", 20) + "\x01\x02\x03\x04\x00\x00"
	if got, _ := ParseNodes(zero, false); len(got) != 0 {
		t.Fatalf("port 0 node kept: %v", got)
	}
	peers := ParsePeers([]string{"\x01\x02\x03\x04\x1a\xe1", "short", "\x01\x02\x03\x04\x00\x00"})
	if len(peers) != 1 || peers[0] != netip.MustParseAddrPort("1.2.3.4:6881") {
		t.Fatalf("ParsePeers = %v", peers)
	}
	if _, err := ParseSamples("abc"); err == nil {
		t.Fatal("bad samples accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:rd2:id20:mnopqrstuvwxyz1234565:nodes26:abcdefghij0123456789\x01\x02\x03\x04\x05\x066:valuesl6:\x01\x02\x03\x04\x05\x06ee1:t2:aa1:y1:re"))
	f.Add([]byte("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if m.R != nil {
			ParseNodes(m.R.Nodes, false)
			ParseNodes(m.R.Nodes6, true)
			if len(ParsePeers(m.R.Values)) > MaxValues {
				t.Fatal("values cap exceeded")
			}
			ParseSamples(m.R.Samples)
		}
		// what decodes must re-encode and decode to the same message
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode of re-encoded %q: %v", enc, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs: %+v vs %+v", m, m2)
		}
	})
}
