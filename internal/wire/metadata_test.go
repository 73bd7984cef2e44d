package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestMetadataMsgEncodeDecode(t *testing.T) {
	full := bytes.Repeat([]byte{'a'}, MetadataPieceLen)
	cases := []struct {
		name string
		m    MetadataMsg
		wire string
	}{
		{"request", MetadataMsg{Type: MetadataRequest, Piece: 0}, "d8:msg_typei0e5:piecei0ee"},
		{"reject", MetadataMsg{Type: MetadataReject, Piece: 3}, "d8:msg_typei2e5:piecei3ee"},
		{"data-last", MetadataMsg{Type: MetadataData, Piece: 1, TotalSize: MetadataPieceLen + 5, Data: []byte("hello")},
			"d8:msg_typei1e5:piecei1e10:total_sizei16389eehello"},
		{"data-full", MetadataMsg{Type: MetadataData, Piece: 0, TotalSize: 3 * MetadataPieceLen, Data: full},
			"d8:msg_typei1e5:piecei0e10:total_sizei49152ee" + string(full)},
	}
	for _, tc := range cases {
		got := AppendMetadataMsg(nil, tc.m)
		if string(got) != tc.wire {
			t.Errorf("%s: Append = %.80q, want %.80q", tc.name, got, tc.wire)
		}
		m, err := ParseMetadataMsg([]byte(tc.wire))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(m, tc.m) {
			t.Errorf("%s: Parse = %+v, want %+v", tc.name, m, tc.m)
		}
	}
	// out-of-order keys and unknown keys are accepted
	m, err := ParseMetadataMsg([]byte("d5:piecei2e1:xi9e8:msg_typei0ee"))
	if err != nil || m.Type != MetadataRequest || m.Piece != 2 {
		t.Errorf("lenient: %+v %v", m, err)
	}
}

func TestMetadataMsgBad(t *testing.T) {
	cases := map[string]string{
		"not a dict":         "i1e",
		"truncated":          "d8:msg_typei0e5:piecei0e",
		"missing piece":      "d8:msg_typei0ee",
		"missing type":       "d5:piecei0ee",
		"negative piece":     "d8:msg_typei0e5:piecei-1ee",
		"piece too large":    "d8:msg_typei0e5:piecei1024ee",
		"trailing request":   "d8:msg_typei0e5:piecei0eeXX",
		"data no total":      "d8:msg_typei1e5:piecei0eex",
		"data zero total":    "d8:msg_typei1e5:piecei0e10:total_sizei0eex",
		"data total too big": "d8:msg_typei1e5:piecei0e10:total_sizei16777217eex",
		"data beyond total":  "d8:msg_typei1e5:piecei1e10:total_sizei16384eex",
		"data short":         "d8:msg_typei1e5:piecei0e10:total_sizei5eeabcd",
		"data long":          "d8:msg_typei1e5:piecei0e10:total_sizei5eeabcdef",
		"string type":        "d8:msg_type1:15:piecei0ee",
	}
	for name, in := range cases {
		if _, err := ParseMetadataMsg([]byte(in)); !errors.Is(err, ErrBadMetadataMsg) {
			t.Errorf("%s: err %v, want ErrBadMetadataMsg", name, err)
		}
	}
	m, err := ParseMetadataMsg([]byte("d8:msg_typei7e5:piecei1ee"))
	if !errors.Is(err, ErrUnknownMetadataMsg) || m.Type != 7 || m.Piece != 1 {
		t.Errorf("unknown type: %+v %v", m, err)
	}
}

func TestMetadataPieceSize(t *testing.T) {
	for _, c := range [][3]int{{16384, 0, 16384}, {16384, 1, 0}, {16385, 1, 1}, {0, 0, 0}, {100, -1, 0}, {MaxMetadataSize, 1023, 16384}} {
		if got := MetadataPieceSize(c[0], c[1]); got != c[2] {
			t.Errorf("MetadataPieceSize(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}
