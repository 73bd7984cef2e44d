package bencode

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type sample struct {
	Name   string           `bencode:"name"`
	Length int64            `bencode:"length,omitempty"`
	Files  []sampleFile     `bencode:"files,omitempty"`
	Hash   [4]byte          `bencode:"hash"`
	Extra  map[string]int64 `bencode:"extra,omitempty"`
	Raw    RawMessage       `bencode:"raw,omitempty"`
	Skip   string           `bencode:"-"`
}

type sampleFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

func TestRoundTripStruct(t *testing.T) {
	in := sample{Name: "a b", Length: 42, Files: []sampleFile{{1, []string{"x", "y"}}}, Hash: [4]byte{1, 2, 3, 4},
		Extra: map[string]int64{"z": -3, "a": 0}, Raw: RawMessage("li1ee")}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "d5:extrad1:ai0e1:zi-3ee5:filesld6:lengthi1e4:pathl1:x1:yeee4:hash4:\x01\x02\x03\x046:lengthi42e4:name3:a b3:rawli1eee"
	if string(b) != want {
		t.Fatalf("got  %q\nwant %q", b, want)
	}
	var out sample
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(out)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed: %q", b2)
	}
}

func TestRejects(t *testing.T) {
	cases := map[string]string{
		"leading zero int":    "i03e",
		"negative zero":       "i-0e",
		"empty int":           "ie",
		"bare minus":          "i-e",
		"plus sign":           "i+1e",
		"unterminated int":    "i12",
		"leading zero strlen": "03:abc",
		"short string":        "5:abc",
		"no colon":            "3abc",
		"unsorted keys":       "d1:bi1e1:ai2ee",
		"duplicate keys":      "d1:ai1e1:ai2ee",
		"int key":             "di1ei2ee",
		"unterminated list":   "li1e",
		"trailing":            "i1ei2e",
		"bad type":            "x",
		"empty":               "",
		"huge length":         "99999999999:x",
		"int overflow":        "i99999999999999999999e",
	}
	for name, in := range cases {
		var v any
		if err := Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%s: %q accepted as %v", name, in, v)
		}
		if err := Valid([]byte(in)); err == nil {
			t.Errorf("%s: Valid accepted %q", name, in)
		}
	}
}

func TestLenientOrder(t *testing.T) {
	var v map[string]int
	if err := UnmarshalLimits([]byte("d1:bi1e1:ai2ee"), &v, Limits{MaxDepth: 8, MaxStringLen: 100, MaxItems: 100, Lenient: true}); err != nil {
		t.Fatal(err)
	}
	if v["a"] != 2 || v["b"] != 1 {
		t.Fatalf("got %v", v)
	}
}

func TestDepthLimit(t *testing.T) {
	deep := strings.Repeat("l", 100) + strings.Repeat("e", 100)
	var v any
	err := Unmarshal([]byte(deep), &v)
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "nesting") {
		t.Fatalf("want nesting error, got %v", err)
	}
}

func TestDictFieldAndPrefix(t *testing.T) {
	doc := []byte("d8:announce3:url4:infod4:name1:xe5:zzzzzi1ee")
	raw, ok, err := DictField(doc, "info")
	if err != nil || !ok || string(raw) != "d4:name1:xe" {
		t.Fatalf("DictField = %q %v %v", raw, ok, err)
	}
	var m map[string]int
	n, err := UnmarshalPrefix([]byte("d1:ai1eeTAIL"), &m, DefaultLimits)
	if err != nil || n != 8 || m["a"] != 1 {
		t.Fatalf("prefix n=%d m=%v err=%v", n, m, err)
	}
}

func TestGeneric(t *testing.T) {
	var v any
	if err := Unmarshal([]byte("d1:ali1e2:xye1:bi-5ee"), &v); err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	l := m["a"].([]any)
	if l[0].(int64) != 1 || l[1].(string) != "xy" || m["b"].(int64) != -5 {
		t.Fatalf("got %#v", v)
	}
}

// FuzzDecode: any input decodes to a value or an error, never a panic; a
// value that decodes re-encodes to exactly the input (canonical form).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"i0e", "4:spam", "l4:spami42ee", "d3:bar4:spam3:fooi42ee", "d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee", "le", "de", "i-1e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := Unmarshal(data, &v); err != nil {
			if Valid(data) == nil {
				t.Fatalf("Unmarshal failed but Valid passed: %v", err)
			}
			return
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("not canonical round trip: %q -> %q", data, out)
		}
	})
}
