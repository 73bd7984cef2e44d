package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// A libtorrent-style handshake with keys out of canonical order ("v" and
// "yourip" early, "m" late), extra keys, and an "m" entry that is not an int.
const libtorrentLike = "d" +
	"1:v16:libtorrent/2.0.9" +
	"6:yourip4:\x7f\x00\x00\x01" +
	"12:complete_agoi-1e" +
	"1:md11:lt_donthavei7e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1e6:ut_bad3:xyz7:ut_hugei999ee" +
	"13:metadata_sizei31235e" +
	"4:reqqi500e" +
	"1:pi6881e" +
	"11:upload_onlyi0e" +
	"1:ei1e" +
	"e"

func TestParseExtHandshakeLibtorrentLike(t *testing.T) {
	h, err := ParseExtHandshake([]byte(libtorrentLike))
	if err != nil {
		t.Fatal(err)
	}
	want := ExtHandshake{
		M:            map[string]int{"lt_donthave": 7, "upload_only": 3, "ut_holepunch": 4, "ut_metadata": 2, "ut_pex": 1},
		V:            "libtorrent/2.0.9",
		P:            6881,
		YourIP:       []byte{127, 0, 0, 1},
		Reqq:         500,
		MetadataSize: 31235,
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got  %+v\nwant %+v", h, want)
	}
	again, err := ParseExtHandshake(h.Marshal())
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
}

func TestExtHandshakeMarshal(t *testing.T) {
	h := ExtHandshake{M: map[string]int{ExtPex: 2, ExtMetadata: 1}, V: "shoal/0.1", P: 51413, Reqq: 250, MetadataSize: 100}
	want := "d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei100e1:pi51413e4:reqqi250e1:v9:shoal/0.1e"
	if got := string(h.Marshal()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(ExtHandshake{}.Marshal()); got != "d1:mdee" {
		t.Fatalf("empty handshake = %s, want d1:mdee", got)
	}
}

func TestParseExtHandshakeLenient(t *testing.T) {
	cases := map[string]ExtHandshake{
		"de":                                {M: map[string]int{}},
		"d1:mi5ee":                          {M: map[string]int{}},                          // m not a dict
		"d1:md1:ai-1e1:bi256e1:ci0eee":      {M: map[string]int{"c": 0}},                    // ids outside 0..255 dropped, 0 kept
		"d1:pi70000e6:yourip3:abce":         {M: map[string]int{}},                          // bad port, bad address length
		"d13:metadata_sizei99999999999ee":   {M: map[string]int{}},                          // metadata too large
		"d11:upload_onlyi5e1:v3:abce":       {M: map[string]int{}, UploadOnly: 1, V: "abc"}, // normalised flag
		"d1:md1:xi1eee_trailing_garbage":    {M: map[string]int{"x": 1}},                    // bytes after dict
		"d4:ipv416:0123456789abcdef1:vi1ee": {M: map[string]int{}},                          // wrong types/lengths
		"d4:ipv64:abcd4:reqqi-5ee":          {M: map[string]int{}},
	}
	for in, want := range cases {
		got, err := ParseExtHandshake([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, want %+v", in, got, want)
		}
	}
}

func TestParseExtHandshakeBad(t *testing.T) {
	for _, in := range []string{"", "i1e", "le", "d1:m", "d1:md1:ai1e", strings.Repeat("l", 100) + strings.Repeat("e", 100),
		"d1:ai1e1:ai1ee"} {
		if _, err := ParseExtHandshake([]byte(in)); !errors.Is(err, ErrBadExtHandshake) {
			t.Errorf("%q: err %v, want ErrBadExtHandshake", in, err)
		}
	}
	big := []byte("d1:v" + "70000:" + strings.Repeat("x", 70000) + "e")
	if _, err := ParseExtHandshake(big); !errors.Is(err, ErrBadExtHandshake) {
		t.Errorf("oversized: err %v", err)
	}
	if h, _ := ParseExtHandshake(nil); h.M == nil {
		t.Error("M is nil on error")
	}
}

func TestParseExtHandshakeTransmissionLike(t *testing.T) {
	in := "d1:ei0e4:ipv44:\x7f\x00\x00\x014:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
		"1:md12:ut_holepunchi3e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5128e1:pi51413e4:reqqi512e" +
		"11:upload_onlyi1e1:v18:Transmission 4.0.5e"
	h, err := ParseExtHandshake([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if h.M[ExtMetadata] != 2 || h.M[ExtPex] != 1 || h.MetadataSize != 5128 || h.P != 51413 || h.Reqq != 512 ||
		h.UploadOnly != 1 || h.V != "Transmission 4.0.5" || len(h.IPv4) != 4 || len(h.IPv6) != 16 || h.IPv6[15] != 1 {
		t.Fatalf("got %+v", h)
	}
	// our encoding is the same minus the unknown "e" key
	if got, want := string(h.Marshal()), "d"+in[len("d1:ei0e"):]; got != want {
		t.Fatalf("Marshal = %q\nwant      %q", got, want)
	}
}
