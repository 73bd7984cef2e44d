package bencode

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorNamesField checks that a value of the wrong type (or a malformed
// value) inside a struct field names the innermost dictionary key, so a
// user reading "key \"path\": cannot decode string" knows what is wrong.
func TestErrorNamesField(t *testing.T) {
	type file struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	type info struct {
		Files  []file `bencode:"files"`
		Pieces []byte `bencode:"pieces"`
	}
	for _, tc := range []struct{ in, key string }{
		{"d5:filesld6:lengthi1e4:path1:xeee", "path"},
		{"d5:filesld6:length1:1eee", "length"},
		{"d6:piecesi5ee", "pieces"},
		{"d5:filesld6:lengthi01eeee", "length"},
		{"d5:files1:xe", "files"},
	} {
		var v info
		err := Unmarshal([]byte(tc.in), &v)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("%q: error %v, want a *SyntaxError", tc.in, err)
		}
		if se.Key != tc.key || !strings.Contains(err.Error(), `key "`+tc.key+`"`) {
			t.Errorf("%q: error %q names key %q, want %q", tc.in, err, se.Key, tc.key)
		}
	}
}
