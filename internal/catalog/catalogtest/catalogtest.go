// Package catalogtest is the conformance suite every catalog.Store runs.
package catalogtest

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Hash returns a deterministic info-hash for s.
func Hash(s string) metainfo.Hash { return metainfo.Hash(sha1.Sum([]byte(s))) }

// Run runs the suite; open must return a new, empty store.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"Seeders", testSeeders},
		{"Normalised", testNormalised},
		{"PathsAndRanking", testPathsAndRanking},
		{"Typo", testTypo},
		{"ShortQueries", testShort},
		{"Paging", testPaging},
		{"Hostile", testHostile},
		{"Differential", testDifferential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s catalog.Store, name string, paths ...string) metainfo.Hash {
	t.Helper()
	e := catalog.Entry{InfoHash: Hash(name), Name: name, Added: time.Unix(1700000000, 0)}
	for i, p := range paths {
		e.Files = append(e.Files, catalog.FileEntry{Path: p, Length: int64(100 + i)})
		e.Size += int64(100 + i)
	}
	if len(paths) == 0 {
		e.Size = 1234
	}
	if err := s.Put(context.Background(), e); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
	return e.InfoHash
}

func search(t *testing.T, s catalog.Store, q string, limit, offset int) ([]catalog.Hit, int) {
	t.Helper()
	hs, total, err := s.Search(context.Background(), catalog.Query{Text: q, Limit: limit, Offset: offset})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return hs, total
}

func names(hs []catalog.Hit) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// exactNames returns the names of hits that are exact matches (score >= 1).
func exactNames(hs []catalog.Hit) []string {
	var out []string
	for _, h := range hs {
		if h.Score >= 1 {
			out = append(out, h.Name)
		}
	}
	return out
}

func testPutGet(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	ih := put(t, s, "Some Album (2001)", "Some Album (2001)/01 - Intro.flac", "Some Album (2001)/cover.jpg")
	h, err := s.Get(ctx, ih)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "Some Album (2001)" || h.Size != 201 || len(h.Files) != 2 || h.Files[1].Path != "Some Album (2001)/cover.jpg" ||
		h.Files[1].Length != 101 || !h.Added.Equal(time.Unix(1700000000, 0)) || h.InfoHash != ih {
		t.Fatalf("Get = %+v", h)
	}
	if _, err := s.Get(ctx, Hash("absent")); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Get(absent) err = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, catalog.Entry{InfoHash: Hash("x")}); !errors.Is(err, catalog.ErrInvalidEntry) {
		t.Fatalf("Put(empty name) err = %v, want ErrInvalidEntry", err)
	}
	if err := s.Put(ctx, catalog.Entry{InfoHash: Hash("x"), Name: "bad\xff"}); !errors.Is(err, catalog.ErrInvalidEntry) {
		t.Fatalf("Put(invalid utf8) err = %v, want ErrInvalidEntry", err)
	}
}

func testReplace(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	ih := put(t, s, "first name")
	if err := s.SetSeeders(ctx, ih, 7, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, catalog.Entry{InfoHash: ih, Name: "second title", Size: 9}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Get(ctx, ih)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "second title" || h.Seeders != 7 || h.Leechers != 3 || h.Size != 9 {
		t.Fatalf("after replace: %+v", h)
	}
	if hs, total := search(t, s, "first", 10, 0); total != 0 || len(exactNames(hs)) != 0 {
		t.Fatalf("old name still found: %v", names(hs))
	}
	if hs, total := search(t, s, "cond tit", 10, 0); total != 1 || hs[0].InfoHash != ih {
		t.Fatalf("new name not found: %v", names(hs))
	}
}

func testSeeders(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	if err := s.SetSeeders(ctx, Hash("nope"), 1, 1); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("SetSeeders(unknown) = %v, want ErrNotFound", err)
	}
	a := put(t, s, "linux distro alpha")
	b := put(t, s, "linux distro beta")
	c := put(t, s, "linux distro gamma")
	for ih, n := range map[metainfo.Hash]int{a: 1, b: 50, c: 10} {
		if err := s.SetSeeders(ctx, ih, n, 2*n); err != nil {
			t.Fatal(err)
		}
	}
	hs, _ := search(t, s, "distro", 10, 0)
	want := []string{"linux distro beta", "linux distro gamma", "linux distro alpha"}
	if fmt.Sprint(names(hs)) != fmt.Sprint(want) {
		t.Fatalf("ties by seeders: got %v, want %v", names(hs), want)
	}
	if hs[0].Seeders != 50 || hs[0].Leechers != 100 {
		t.Fatalf("counts = %d/%d", hs[0].Seeders, hs[0].Leechers)
	}
}

func testNormalised(t *testing.T, s catalog.Store) {
	put(t, s, "Amélie.2001.1080p.BluRay.x264")
	put(t, s, "Big_Buck_Bunny-720p.mkv")
	put(t, s, "ŁÓDŹ Straße Tour")
	put(t, s, "unrelated thing")
	for _, c := range []struct{ q, want string }{
		{"amelie", "Amélie.2001.1080p.BluRay.x264"},
		{"AMÉLIE 2001", "Amélie.2001.1080p.BluRay.x264"},
		{"amélie.2001", "Amélie.2001.1080p.BluRay.x264"},
		{"lie 200", "Amélie.2001.1080p.BluRay.x264"},
		{"buck bunny", "Big_Buck_Bunny-720p.mkv"},
		{"uck bun", "Big_Buck_Bunny-720p.mkv"},
		{"bunny 720p mkv", "Big_Buck_Bunny-720p.mkv"},
		{"720p bunny", "Big_Buck_Bunny-720p.mkv"},
		{"lodz strasse", "ŁÓDŹ Straße Tour"},
		{"STRASSE", "ŁÓDŹ Straße Tour"},
	} {
		hs, total := search(t, s, c.q, 10, 0)
		if total != 1 || len(hs) != 1 || hs[0].Name != c.want {
			t.Errorf("Search(%q) = %v (total %d), want [%s]", c.q, names(hs), total, c.want)
		}
	}
}

func testPathsAndRanking(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	inPath := put(t, s, "Collected Works", "Collected Works/disc1/moonlight sonata.flac")
	inName := put(t, s, "Moonlight Sonata - Beethoven")
	_ = s.SetSeeders(ctx, inPath, 1000, 0) // seeders only break ties
	_ = s.SetSeeders(ctx, inName, 1, 0)
	hs, total := search(t, s, "moonlight sonata", 10, 0)
	if total != 2 || len(hs) != 2 || hs[0].InfoHash != inName || hs[1].InfoHash != inPath {
		t.Fatalf("name match must rank above path match: %v", names(hs))
	}
	if !(hs[0].Score > hs[1].Score && hs[1].Score >= 1) {
		t.Fatalf("scores %v, %v", hs[0].Score, hs[1].Score)
	}
	if hs, total := search(t, s, "disc1", 10, 0); total != 1 || hs[0].InfoHash != inPath {
		t.Fatalf("path-only word: %v", names(hs))
	}
	// The whole phrase in the name beats scattered words in the name.
	put(t, s, "sonata for a moonlight night")
	hs, _ = search(t, s, "moonlight sonata", 10, 0)
	if len(hs) != 3 || hs[0].InfoHash != inName || hs[1].Name != "sonata for a moonlight night" {
		t.Fatalf("ranking: %v", names(hs))
	}
	// A shorter name covering more of the query wins among phrase matches.
	put(t, s, "Moonlight Sonata")
	hs, _ = search(t, s, "moonlight sonata", 10, 0)
	if hs[0].Name != "Moonlight Sonata" {
		t.Fatalf("exact name first: %v", names(hs))
	}
}

func testTypo(t *testing.T, s catalog.Store) {
	put(t, s, "ubuntu-22.04.3-desktop-amd64.iso")
	put(t, s, "debian-12.4.0-amd64-netinst.iso")
	put(t, s, "Sintel.2010.1080p.mkv")
	for _, c := range []struct{ q, want string }{
		{"ubunto", "ubuntu-22.04.3-desktop-amd64.iso"},
		{"ubuntu desktp", "ubuntu-22.04.3-desktop-amd64.iso"},
		{"debain netinst", "debian-12.4.0-amd64-netinst.iso"},
		{"sintell 2010", "Sintel.2010.1080p.mkv"},
	} {
		hs, _ := search(t, s, c.q, 10, 0)
		if len(hs) == 0 || hs[0].Name != c.want {
			t.Errorf("Search(%q) = %v, want %s first", c.q, names(hs), c.want)
			continue
		}
		if hs[0].Score >= 1 {
			t.Errorf("Search(%q): typo hit scored %v, want < 1 (fuzzy)", c.q, hs[0].Score)
		}
	}
	if hs, _ := search(t, s, "qqqzzzxxx", 10, 0); len(hs) != 0 {
		t.Errorf("nonsense found %v", names(hs))
	}
}

func testShort(t *testing.T, s catalog.Store) {
	put(t, s, "x")
	put(t, s, "Xa file")
	put(t, s, "nothing")
	put(t, s, "folder", "folder/Q7.dat")
	if hs, total := search(t, s, "x", 10, 0); total != 2 || fmt.Sprint(names(hs)) != "[x Xa file]" {
		t.Errorf(`Search("x") = %v (%d)`, names(hs), total)
	}
	if hs, total := search(t, s, "q7", 10, 0); total != 1 || hs[0].Name != "folder" {
		t.Errorf(`Search("q7") = %v (%d)`, names(hs), total)
	}
	if hs, total := search(t, s, "xa fi", 10, 0); total != 1 || hs[0].Name != "Xa file" {
		t.Errorf(`Search("xa fi") = %v (%d)`, names(hs), total)
	}
}

func testPaging(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	var es []catalog.Entry
	for i := range 23 {
		n := fmt.Sprintf("paged item %02d", i)
		es = append(es, catalog.Entry{InfoHash: Hash(n), Name: n, Size: int64(i)})
	}
	if err := catalog.PutAll(ctx, s, es); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for off := 0; off < 30; off += 10 {
		hs, total := search(t, s, "paged", 10, off)
		if total != 23 {
			t.Fatalf("total = %d", total)
		}
		if want := min(10, 23-off); len(hs) != want {
			t.Fatalf("page at %d has %d hits, want %d", off, len(hs), want)
		}
		for _, h := range hs {
			if seen[h.Name] {
				t.Fatalf("%s on two pages", h.Name)
			}
			seen[h.Name] = true
		}
	}
	if hs, total := search(t, s, "paged", 10, 100); len(hs) != 0 || total != 23 {
		t.Fatalf("past the end: %d hits, total %d", len(hs), total)
	}
	if hs, _ := search(t, s, "paged", 100000, 0); len(hs) != 23 {
		t.Fatalf("large limit: %d", len(hs))
	}
}

func testHostile(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	put(t, s, `quote " and (parens) NEAR* AND OR NOT`)
	for _, q := range []string{`"`, `""""`, `a" OR "b`, `(parens)`, `NEAR*`, `*`, `%`, `_%\`, `'; DROP TABLE torrents; --`,
		strings.Repeat("ab", 5000), "\x00\xff", "AND", "col:val", "{doc}: x", "^start"} {
		if _, _, err := s.Search(ctx, catalog.Query{Text: q, Limit: -5, Offset: -3}); err != nil && !errors.Is(err, catalog.ErrInvalidQuery) {
			t.Errorf("Search(%.20q) = %v", q, err)
		}
	}
	if hs, _ := search(t, s, `" and (parens`, 10, 0); len(hs) != 1 {
		t.Errorf("quote query: %v", names(hs))
	}
	if hs, _ := search(t, s, "near* and", 10, 0); len(hs) != 1 {
		t.Errorf("operator words: %v", names(hs))
	}
	for _, q := range []string{"", "  ", "...", "-_-"} {
		if _, _, err := s.Search(ctx, catalog.Query{Text: q}); !errors.Is(err, catalog.ErrInvalidQuery) {
			t.Errorf("Search(%q) err = %v, want ErrInvalidQuery", q, err)
		}
	}
	if _, err := s.Get(ctx, Hash("still there")); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("table damaged: %v", err)
	}
}

// testDifferential compares exact hits with a brute-force scan.
func testDifferential(t *testing.T, s catalog.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "Bravo", "charlie", "délta", "echo", "foxtrot", "golf", "hotel", "india", "2019", "1080p", "x265", "s01e02"}
	var es []catalog.Entry
	var norm []string
	for i := range 300 {
		var parts []string
		for range 2 + rng.IntN(4) {
			parts = append(parts, words[rng.IntN(len(words))])
		}
		n := fmt.Sprintf("%s.%d", strings.Join(parts, "."), i)
		es = append(es, catalog.Entry{InfoHash: Hash(n), Name: n})
		norm = append(norm, catalog.Normalize(n))
	}
	if err := catalog.PutAll(ctx, s, es); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		src := norm[rng.IntN(len(norm))]
		i := rng.IntN(len(src))
		j := min(len(src), i+1+rng.IntN(10))
		q := strings.TrimSpace(src[i:j])
		if q == "" || !strings.Contains(src, q) {
			continue
		}
		// want: names containing the phrase; loose: names containing every word.
		want, loose := map[string]bool{}, map[string]bool{}
		for k, n := range norm {
			if strings.Contains(n, q) {
				want[es[k].Name] = true
			}
			all := true
			for _, w := range strings.Fields(q) {
				all = all && strings.Contains(n, w)
			}
			if all {
				loose[es[k].Name] = true
			}
		}
		hs, total := search(t, s, q, catalog.MaxLimit, 0)
		got := exactNames(hs)
		if len(loose) >= catalog.FuzzyBelow && total != len(loose) {
			t.Errorf("Search(%q) total %d, brute force %d", q, total, len(loose))
		}
		if len(loose) <= catalog.MaxLimit && len(got) != len(loose) {
			t.Errorf("Search(%q) %d exact hits, brute force %d", q, len(got), len(loose))
		}
		for i, n := range got {
			if !loose[n] {
				t.Errorf("Search(%q) returned %q, which does not contain every word", q, n)
			}
			if i < len(want) && !want[n] {
				t.Errorf("Search(%q): hit %d %q lacks the phrase but ranks above a phrase match", q, i, n)
			}
		}
		if len(loose) <= catalog.MaxLimit {
			for n := range want {
				if !slices.Contains(got, n) {
					t.Errorf("Search(%q) missed %q", q, n)
				}
			}
		}
	}
}
