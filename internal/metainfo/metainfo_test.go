package metainfo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// buildInfo encodes an info dictionary with correct piece hashes of zero
// content (hash values don't matter to ParseInfo, only their count).
func buildInfo(t testing.TB, name string, pl int64, length int64, files []map[string]any) []byte {
	t.Helper()
	d := map[string]any{"name": name, "piece length": pl}
	total := length
	if files != nil {
		fl := make([]any, len(files))
		total = 0
		for i, f := range files {
			fl[i] = f
			total += f["length"].(int64)
		}
		d["files"] = fl
	} else {
		d["length"] = length
	}
	n := (total + pl - 1) / pl
	d["pieces"] = make([]byte, n*20)
	b, err := bencode.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func file(length int64, path ...string) map[string]any {
	p := make([]any, len(path))
	for i, c := range path {
		p[i] = c
	}
	return map[string]any{"length": length, "path": p}
}

func padFile(length int64) map[string]any {
	f := file(length, ".pad", "x")
	f["attr"] = "p"
	return f
}

func TestHostilePaths(t *testing.T) {
	bad := []struct {
		name string
		path []string
	}{
		{"dotdot", []string{"..", "etc", "passwd"}},
		{"dotdot-inner", []string{"a", "..", "..", "b"}},
		{"dot", []string{".", "a"}},
		{"empty-component", []string{"a", "", "b"}},
		{"empty-path", []string{}},
		{"slash-in-component", []string{"a/../../b"}},
		{"absolute", []string{"/etc/passwd"}},
		{"backslash", []string{`..\..\windows`}},
		{"drive", []string{"C:", "x"}},
		{"drive-prefix", []string{"c:evil"}},
		{"nul", []string{"a\x00b"}},
		{"bad-utf8", []string{"a\xffb"}},
		{"too-long", []string{strings.Repeat("a", 256)}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			raw := buildInfo(t, "ok", 16384, 0, []map[string]any{file(10, tc.path...)})
			_, err := ParseInfo(raw)
			if err == nil {
				t.Fatalf("path %q accepted", tc.path)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	for _, name := range []string{"..", ".", "", "a/b", `a\b`, "/abs", "D:", "x\x00"} {
		raw := buildInfo(t, name, 16384, 10, nil)
		if _, err := ParseInfo(raw); err == nil {
			t.Errorf("torrent name %q accepted", name)
		}
	}
	// Fine names: colons past the drive position, dots inside, unicode, hidden.
	for _, p := range [][]string{{"ab:c"}, {"..a"}, {"a..", "b"}, {".hidden"}, {"日本語", "ファイル.txt"}} {
		raw := buildInfo(t, "ok", 16384, 0, []map[string]any{file(10, p...)})
		if _, err := ParseInfo(raw); err != nil {
			t.Errorf("path %q refused: %v", p, err)
		}
	}
}

func TestConflicts(t *testing.T) {
	cases := []struct {
		name  string
		files []map[string]any
		ok    bool
	}{
		{"duplicate", []map[string]any{file(1, "a"), file(1, "a")}, false},
		{"file-and-dir", []map[string]any{file(1, "a"), file(1, "a-b"), file(1, "a", "b")}, false},
		{"dir-and-file", []map[string]any{file(1, "d", "x"), file(1, "d")}, false},
		{"padding-duplicates-ok", []map[string]any{file(1, "a"), padFile(3), file(1, "b"), padFile(3)}, true},
		{"siblings", []map[string]any{file(1, "a", "b"), file(1, "a", "c")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseInfo(buildInfo(t, "t", 16384, 0, tc.files))
			if (err == nil) != tc.ok {
				t.Fatalf("ok=%v, err=%v", tc.ok, err)
			}
		})
	}
}

func TestParseInfoLimits(t *testing.T) {
	mk := func(d map[string]any) []byte {
		b, err := bencode.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"zero piece length":  mk(map[string]any{"name": "a", "piece length": int64(0), "pieces": "", "length": int64(1)}),
		"huge piece length":  mk(map[string]any{"name": "a", "piece length": int64(MaxPieceLength * 2), "pieces": make([]byte, 20), "length": int64(1)}),
		"pieces not mult 20": mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": make([]byte, 19), "length": int64(1)}),
		"too few pieces":     mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": make([]byte, 20), "length": int64(17)}),
		"too many pieces":    mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": make([]byte, 40), "length": int64(16)}),
		"negative length":    mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": "", "length": int64(-1)}),
		"empty":              mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": "", "length": int64(0)}),
		"huge total":         mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": "", "files": []any{file(MaxTotalLength, "a"), file(MaxTotalLength, "b")}}),
		"both":               mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": make([]byte, 20), "length": int64(1), "files": []any{file(1, "a")}}),
		"neither":            mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": make([]byte, 20)}),
		"no files":           mk(map[string]any{"name": "a", "piece length": int64(16), "pieces": "", "files": []any{}}),
		"not a dict":         []byte("li1ee"),
	}
	for name, raw := range cases {
		if _, err := ParseInfo(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGeometry(t *testing.T) {
	// files: a(5) empty(0) pad(3) b(10) empty(0) c(2) -> total 20, pieces of 8
	raw := buildInfo(t, "g", 8, 0, []map[string]any{
		file(5, "a"), file(0, "e1"), padFile(3), file(10, "b"), file(0, "e2"), file(2, "c"),
	})
	info, err := ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if info.TotalLength() != 20 || info.NumPieces() != 3 || !info.MultiFile {
		t.Fatalf("total=%d pieces=%d multi=%v", info.TotalLength(), info.NumPieces(), info.MultiFile)
	}
	wantOff := []int64{0, 5, 5, 8, 18, 18}
	for k, f := range info.Files {
		if f.Offset != wantOff[k] {
			t.Errorf("file %d offset %d want %d", k, f.Offset, wantOff[k])
		}
	}
	if !info.Files[2].Padding || info.Files[3].Padding {
		t.Error("padding attr not parsed")
	}
	sizes := []int64{8, 8, 4}
	for p, s := range sizes {
		if info.PieceSize(p) != s {
			t.Errorf("piece %d size %d want %d", p, info.PieceSize(p), s)
		}
	}
	if info.PieceSize(3) != 0 || info.PieceSize(-1) != 0 {
		t.Error("out of range piece has size")
	}
	spans := []struct {
		off, n int64
		want   []Span
	}{
		{0, 20, []Span{{0, 0, 5}, {2, 0, 3}, {3, 0, 10}, {5, 0, 2}}},
		{4, 2, []Span{{0, 4, 1}, {2, 0, 1}}},
		{8, 8, []Span{{3, 0, 8}}},
		{17, 100, []Span{{3, 9, 1}, {5, 0, 2}}},
		{20, 1, nil},
		{-1, 1, nil},
		{3, 0, nil},
	}
	for _, tc := range spans {
		got := info.Spans(tc.off, tc.n)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Spans(%d,%d) = %v want %v", tc.off, tc.n, got, tc.want)
		}
	}
	pf := [][2]int{{0, 2}, {3, 3}, {3, 5}}
	for p, want := range pf {
		f, l := info.PieceFiles(p)
		if f != want[0] || l != want[1] {
			t.Errorf("PieceFiles(%d) = %d,%d want %v", p, f, l, want)
		}
	}
	if f, l := info.FilePieces(3); f != 1 || l != 2 {
		t.Errorf("FilePieces(3) = %d,%d", f, l)
	}
	if f, l := info.FilePieces(1); f != 0 || l != -1 {
		t.Errorf("FilePieces(empty) = %d,%d", f, l)
	}
	if got := info.FilePath("/out", 3); got != filepath.Join("/out", "g", "b") {
		t.Errorf("FilePath = %s", got)
	}
}

func TestSingleFile(t *testing.T) {
	info, err := ParseInfo(buildInfo(t, "one.bin", 16, 40, nil))
	if err != nil {
		t.Fatal(err)
	}
	if info.MultiFile || len(info.Files) != 1 || info.Files[0].Path[0] != "one.bin" || info.NumPieces() != 3 {
		t.Fatalf("%+v", info)
	}
	if got := info.FilePath("/out", 0); got != filepath.Join("/out", "one.bin") {
		t.Errorf("FilePath = %s", got)
	}
}

func TestChoosePieceLength(t *testing.T) {
	cases := map[int64]int64{
		1:           16 << 10,
		2000 << 14:  16 << 10,
		2001 << 14:  32 << 10,
		1 << 30:     1 << 20, // 1024 pieces
		4 << 30:     4 << 20,
		1 << 50:     16 << 20,
		1500 << 20:  1 << 20,
		1999 << 20:  1 << 20,
		20000 << 20: 16 << 20,
	}
	for total, want := range cases {
		if got := ChoosePieceLength(total); got != want {
			t.Errorf("ChoosePieceLength(%d) = %d want %d", total, got, want)
		}
	}
}

func TestHash(t *testing.T) {
	h, err := ParseHash("0123456789ABCDEF0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("String = %s", h)
	}
	b32, err := ParseHash("aerukz4jvpg66ajdivtytk6n54asgrlh")
	if err != nil || b32 != h {
		t.Errorf("base32 = %v %v", b32, err)
	}
	for _, s := range []string{"", "xyz", strings.Repeat("g", 40), strings.Repeat("1", 32), strings.Repeat("a", 41)} {
		if _, err := ParseHash(s); err == nil {
			t.Errorf("ParseHash(%q) accepted", s)
		}
	}
}

func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestCreateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "share")
	content := map[string][]byte{
		"b.bin":       pattern(40000, 1),
		"a/x.txt":     pattern(5, 2),
		"a/empty":     {},
		".hidden":     pattern(100000, 3),
		"z/y/deep.md": pattern(16384, 4),
	}
	writeTree(t, root, content)
	var calls int
	var last int64
	m, data, err := Create(context.Background(), CreateOptions{
		Path: root, Trackers: []string{"http://127.0.0.1:1/a", "udp://127.0.0.1:2"},
		WebSeeds: []string{"http://127.0.0.1:3/ws/"}, PieceLength: 16384, Private: true,
		Comment: "hi", CreatedBy: "shoal/test", Workers: 3, NoDate: true,
		Progress: func(done, total int64) { calls++; last = done },
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != m.Info.TotalLength() {
		t.Errorf("progress calls=%d last=%d", calls, last)
	}
	m2, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Error("Parse(created) differs from returned metainfo")
	}
	raw, ok, err := bencode.DictField(data, "info")
	if err != nil || !ok {
		t.Fatal(err)
	}
	if m.InfoHash != Hash(sha1.Sum(raw)) || !bytes.Equal(raw, m.Info.Raw) {
		t.Error("info-hash is not SHA-1 of the raw info dictionary")
	}
	wantOrder := []string{".hidden", "a/empty", "a/x.txt", "b.bin", "z/y/deep.md"}
	var all []byte
	for k, f := range m.Info.Files {
		p := strings.Join(f.Path, "/")
		if p != wantOrder[k] {
			t.Errorf("file %d = %s want %s", k, p, wantOrder[k])
		}
		all = append(all, content[p]...)
	}
	for p := 0; p < m.Info.NumPieces(); p++ {
		off := m.Info.PieceOffset(p)
		if sha1.Sum(all[off:off+m.Info.PieceSize(p)]) != m.Info.PieceHash(p) {
			t.Errorf("piece %d hash wrong", p)
		}
	}
	if !m.Info.Private || m.Info.Name != "share" || m.Comment != "hi" || m.CreatedBy != "shoal/test" || m.CreationDate != 0 {
		t.Errorf("fields: %+v", m)
	}
	if !reflect.DeepEqual(m.Trackers(), [][]string{{"http://127.0.0.1:1/a"}, {"udp://127.0.0.1:2"}}) {
		t.Errorf("trackers %v", m.Trackers())
	}
	if !reflect.DeepEqual(m.URLList, []string{"http://127.0.0.1:3/ws/"}) {
		t.Errorf("url-list %v", m.URLList)
	}
	// Deterministic: same input, same bytes (whatever the worker count).
	_, data2, err := Create(context.Background(), CreateOptions{
		Path: root, Trackers: []string{"http://127.0.0.1:1/a", "udp://127.0.0.1:2"},
		WebSeeds: []string{"http://127.0.0.1:3/ws/"}, PieceLength: 16384, Private: true,
		Comment: "hi", CreatedBy: "shoal/test", Workers: 1, NoDate: true,
	})
	if err != nil || !bytes.Equal(data, data2) {
		t.Errorf("not deterministic: %v", err)
	}
}

func TestCreateSingleTrackerless(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	writeTree(t, dir, map[string][]byte{"f.bin": pattern(70000, 9)})
	m, data, err := Create(context.Background(), CreateOptions{Path: p, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("announce")) || m.Trackers() != nil {
		t.Error("trackerless torrent has an announce key")
	}
	if m.Info.MultiFile || m.Info.TotalLength() != 70000 || m.Info.PieceLength != 16384 || m.Info.NumPieces() != 5 {
		t.Errorf("%+v", m.Info)
	}
	if !strings.HasPrefix(m.Magnet(), "magnet:?xt=urn:btih:"+m.InfoHash.String()+"&dn=f.bin") {
		t.Errorf("magnet %s", m.Magnet())
	}
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"d/a": {1}, "empty/x": {}, "ok": {1}})
	if err := os.Symlink(filepath.Join(dir, "d"), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if m, _, err := Create(context.Background(), CreateOptions{Path: filepath.Join(dir, "linkdir")}); err != nil || m.Info.Name != "linkdir" || len(m.Info.Files) != 1 {
		t.Errorf("symlinked root folder: %v", err)
	}
	if err := os.Symlink(filepath.Join(dir, "ok"), filepath.Join(dir, "d", "link")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]CreateOptions{
		"symlink inside": {Path: filepath.Join(dir, "d")},
		"zero total":     {Path: filepath.Join(dir, "empty")},
		"missing":        {Path: filepath.Join(dir, "nope")},
		"bad piece len":  {Path: filepath.Join(dir, "ok"), PieceLength: 10000},
		"small piece":    {Path: filepath.Join(dir, "ok"), PieceLength: 8192},
	}
	for name, o := range cases {
		if _, _, err := Create(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Create(ctx, CreateOptions{Path: filepath.Join(dir, "ok")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestParseTolerant(t *testing.T) {
	info := buildInfo(t, "x", 16, 10, nil)
	// url-list as a single string, wrong-typed comment, announce-list with empty tier
	d := []byte("d8:announce12:http://a/ann13:announce-listllel9:http://b/ee7:commenti5e4:info" +
		string(info) + "8:url-list8:http://we")
	m, err := Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	if m.Comment != "" || !reflect.DeepEqual(m.URLList, []string{"http://w"}) ||
		!reflect.DeepEqual(m.Trackers(), [][]string{{"http://b/"}}) {
		t.Errorf("%+v trackers=%v", m, m.Trackers())
	}
	for _, bad := range []string{"", "de", "d4:infoi1ee", "d4:info" + string(info) + "ex", "l" + string(info) + "e"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestMagnet(t *testing.T) {
	h, _ := ParseHash("0123456789abcdef0123456789abcdef01234567")
	m := &Magnet{InfoHash: h, Name: "a b&c", Trackers: []string{"http://127.0.0.1:1/a?x=1&y=2", "udp://127.0.0.1:2"},
		Peers: []string{"127.0.0.1:6881"}, WebSeeds: []string{"http://127.0.0.1/ws"}}
	m2, err := ParseMagnet(m.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Errorf("round trip: %+v != %+v", m2, m)
	}
	b32, err := ParseMagnet("magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH&tr.1=http://t1&tr.2=http://t2&dn=n")
	if err != nil || b32.InfoHash != h || !reflect.DeepEqual(b32.Trackers, []string{"http://t1", "http://t2"}) {
		t.Errorf("base32 magnet: %+v %v", b32, err)
	}
	for _, bad := range []string{"", "http://x", "magnet:?dn=x", "magnet:?xt=urn:btih:zz",
		"magnet:?xt=urn:btmh:1220" + strings.Repeat("a", 64), "magnet:?xt=urn:btih:" + strings.Repeat("a", 40) + "&%zz",
		"magnet:?" + strings.Repeat("a", MaxMagnetLen)} {
		if _, err := ParseMagnet(bad); err == nil {
			t.Errorf("ParseMagnet(%q) accepted", truncate(bad))
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(buildInfoTorrent(f, buildInfo(f, "x", 16, 40, nil)))
	f.Add(buildInfoTorrent(f, buildInfo(f, "multi", 8, 0, []map[string]any{file(5, "a"), padFile(3), file(0, "e"), file(9, "d", "b")})))
	f.Add([]byte("d8:announce13:http://a/ann4:infod6:lengthi1e4:name1:x12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Add([]byte("de"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		info := m.Info
		if m.InfoHash != Hash(sha1.Sum(info.Raw)) {
			t.Fatal("info-hash mismatch")
		}
		var sum int64
		for k, fl := range info.Files {
			if fl.Offset != sum || ValidatePath(fl.Path) != nil {
				t.Fatalf("file %d bad: %+v", k, fl)
			}
			sum += fl.Length
		}
		if sum != info.TotalLength() || int64(info.NumPieces()) != (sum+info.PieceLength-1)/info.PieceLength {
			t.Fatal("geometry inconsistent")
		}
		var covered int64
		for _, s := range info.Spans(0, sum) {
			covered += s.Length
		}
		if covered != sum {
			t.Fatalf("spans cover %d of %d", covered, sum)
		}
		_ = m.Magnet()
		_ = m.Trackers()
		if _, err := ParseInfo(info.Raw); err != nil {
			t.Fatalf("re-parse of accepted info: %v", err)
		}
	})
}

func buildInfoTorrent(t testing.TB, info []byte) []byte {
	b, err := bencode.Marshal(map[string]any{"announce": "http://127.0.0.1:1/announce", "info": bencode.RawMessage(info),
		"url-list": []any{"http://127.0.0.1/ws"}, "announce-list": []any{[]any{"http://127.0.0.1:1/announce"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseMagnet(f *testing.F) {
	f.Add("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x&tr=http%3A%2F%2Fa&x.pe=1.2.3.4:5&ws=http://w")
	f.Add("magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH&tr.1=a")
	f.Add("magnet:?xt=urn:btmh:1220aa")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMagnet(s)
		if err != nil {
			return
		}
		m2, err := ParseMagnet(m.String())
		if err != nil {
			t.Fatalf("re-parse %q: %v", m.String(), err)
		}
		if m2.InfoHash != m.InfoHash || m2.Name != m.Name || len(m2.Trackers) != len(m.Trackers) {
			t.Fatalf("round trip changed: %+v -> %+v", m, m2)
		}
	})
}
