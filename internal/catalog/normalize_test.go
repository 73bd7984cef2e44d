package catalog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Big.Buck.Bunny_1080p-x264.MKV", "big buck bunny 1080p x264 mkv"},
		{"  Amélie  (2001) ", "amelie (2001)"},
		{"ŁÓDŹ Straße", "lodz strasse"},
		{"Ｆｕｌｌｗｉｄｔｈ ﬁle", "fullwidth file"},
		{"a\nb\tc\r\nd", "a b c d"},
		{"İstanbul", "istanbul"},
		{"...", ""},
		{"bad\xffbyte", "badbyte"},
		{"dir/sub\\file", "dir sub file"},
	} {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMakePlanCapsQuery(t *testing.T) {
	p, err := makePlan(strings.Repeat("abc ", 1000))
	if err != nil || len(p.phrase) > MaxQueryLen || len(p.words) != 1 {
		t.Fatalf("plan %q %v %v", p.phrase, p.words, err)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Big.Buck", "Amélie", "ß", "\xff", "a  b", "İ", "ﬁ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if !utf8.ValidString(n) || strings.Contains(n, "\n") || strings.Contains(n, "  ") ||
			strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") {
			t.Fatalf("Normalize(%q) = %q", s, n)
		}
		if Normalize(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, Normalize(n))
		}
	})
}
