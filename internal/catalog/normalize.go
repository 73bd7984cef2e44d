package catalog

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// special maps letters that do not decompose under NFKD to ASCII.
var special = map[rune]string{
	'ß': "ss", 'ø': "o", 'Ø': "o", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe",
	'ł': "l", 'Ł': "l", 'đ': "d", 'Đ': "d", 'þ': "th", 'Þ': "th", 'ı': "i",
}

// isSeparator reports runes that Normalize turns into a space.
func isSeparator(r rune) bool {
	switch r {
	case '.', '_', '-', '/', '\\', '+', ',', ';', ':', '|', '~':
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// Normalize returns the form of s that the catalog indexes and matches:
// compatibility-decomposed (NFKD) with combining marks removed, lower case,
// separators ('.', '_', '-', '/', whitespace, ...) turned into single spaces,
// trimmed. It never contains '\n', so documents can join fields with it.
func Normalize(s string) string {
	// invalid bytes first: NFKD leaves the character after one undecomposed,
	// which made Normalize(Normalize(s)) differ from Normalize(s)
	d := norm.NFKD.String(strings.ToValidUTF8(s, ""))
	var b strings.Builder
	b.Grow(len(d))
	space := true // drop leading spaces
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) || r == unicode.ReplacementChar {
			continue
		}
		if isSeparator(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		if sp, ok := special[r]; ok {
			b.WriteString(sp)
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}

// plan is a query turned into what the backends match.
type plan struct {
	phrase string   // normalised query
	words  []string // its distinct words, longest first
}

func makePlan(text string) (plan, error) {
	if len(text) > MaxQueryLen {
		text = text[:MaxQueryLen]
	}
	p := plan{phrase: Normalize(text)}
	if p.phrase == "" {
		return p, ErrInvalidQuery
	}
	seen := map[string]bool{}
	for _, w := range strings.Fields(p.phrase) {
		if !seen[w] {
			seen[w] = true
			p.words = append(p.words, w)
		}
	}
	// Longest first: the most selective word drives an index lookup.
	for i := 1; i < len(p.words); i++ {
		for j := i; j > 0 && len(p.words[j]) > len(p.words[j-1]); j-- {
			p.words[j], p.words[j-1] = p.words[j-1], p.words[j]
		}
	}
	return p, nil
}

// trigrams returns the distinct 3-rune substrings of s (whole s if shorter).
func trigrams(s string) map[string]struct{} {
	rs := []rune(s)
	out := make(map[string]struct{}, len(rs))
	if len(rs) < 3 {
		if len(rs) > 0 {
			out[s] = struct{}{}
		}
		return out
	}
	for i := 0; i+3 <= len(rs); i++ {
		out[string(rs[i:i+3])] = struct{}{}
	}
	return out
}

// similarity is the share of q's trigrams found in doc (0..1).
func similarity(q map[string]struct{}, doc string) float64 {
	if len(q) == 0 {
		return 0
	}
	n := 0
	for t := range q {
		if strings.Contains(doc, t) {
			n++
		}
	}
	return float64(n) / float64(len(q))
}

// exactScore is the score of an exact hit (>= 1): the whole query in the name
// counts most, then every word in the name, then the query in a path, plus
// the share of the name the query covers.
func exactScore(p plan, name, doc string) float64 {
	s := 1.0
	if strings.Contains(name, p.phrase) {
		s += 4 + float64(len([]rune(p.phrase)))/float64(max(1, len([]rune(name))))
	}
	all := true
	for _, w := range p.words {
		if !strings.Contains(name, w) {
			all = false
			break
		}
	}
	if all {
		s += 2
	}
	if strings.Contains(doc, p.phrase) {
		s++
	}
	return s
}
