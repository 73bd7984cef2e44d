package hostile

import (
	"strings"
)

// badTorrent is one hostile .torrent file and the words the refusal must
// contain (lower case; any one of them is enough).
type badTorrent struct {
	Name string
	Data []byte
	Want []string
}

// hostileTorrents generates the hostile .torrent corpus. Every variant
// differs from a valid torrent in one way; escape attempts aim at
// "../escaped" next to the output folder so the test can check that nothing
// appeared there.
func hostileTorrents() []badTorrent {
	const pl = 16384
	data := detData(40000, 7) // 3 pieces
	hashes := pieceHashes(data, pl)
	single := func(name string) []byte {
		return dict("info", dict("length", len(data), "name", name, "piece length", pl, "pieces", hashes))
	}
	// multi builds a multi-file torrent from paths, each file 20000 bytes
	// (so 40000 bytes for two files, matching hashes).
	multi := func(name string, paths ...[]string) []byte {
		var files []any
		total := 0
		for _, p := range paths {
			files = append(files, dict("length", 20000, "path", p))
			total += 20000
		}
		h := pieceHashes(detData(total, 7), pl)
		return dict("info", dict("files", files, "name", name, "piece length", pl, "pieces", h))
	}
	infoWith := func(kv ...any) []byte { return dict("info", dict(kv...)) }
	deep := strings.Repeat("l", 100000) + strings.Repeat("e", 100000)

	var v []badTorrent
	add := func(name string, d []byte, want ...string) {
		v = append(v, badTorrent{name, d, want})
	}
	// names of single-file torrents
	add("name ..", single(".."), "name", "relative")
	add("name .", single("."), "name", "relative")
	add("name empty", single(""), "empty name")
	add("name ../escaped", single("../escaped"), "separator")
	add("name ..\\escaped", single(`..\escaped`), "separator")
	add("name absolute /tmp/x", single("/tmp/shoal-hostile-escaped"), "separator")
	add("name drive C:x", single("C:escaped"), "drive letter")
	add("name with NUL", single("a\x00b"), "nul")
	add("name invalid UTF-8", single("bad\xff\xfe"), "utf-8")
	add("name 300 bytes", single(strings.Repeat("n", 300)), "longer than")
	// paths of multi-file torrents
	add("path .. component", multi("t", []string{"..", "escaped"}, []string{"b"}), "relative")
	add("path a/../../escaped", multi("t", []string{"a", "..", "..", "escaped"}, []string{"b"}), "relative")
	add("path component ../x", multi("t", []string{"../../escaped"}, []string{"b"}), "separator")
	add("path component \\..\\x", multi("t", []string{`..\..\escaped`}, []string{"b"}), "separator")
	add("path absolute", multi("t", []string{"/tmp/shoal-hostile-escaped"}, []string{"b"}), "separator")
	add("path empty list", multi("t", []string{}, []string{"b"}), "empty path")
	add("path empty component", multi("t", []string{"a", ""}, []string{"b"}), "empty name")
	add("path dot component", multi("t", []string{"."}, []string{"b"}), "relative")
	add("path drive letter", multi("t", []string{"C:", "x"}, []string{"b"}), "drive letter")
	add("path 65 deep", multi("t", strings.Split(strings.Repeat("d/", 64)+"f", "/"), []string{"b"}), "deeper")
	add("path NUL", multi("t", []string{"a\x00"}, []string{"b"}), "nul")
	add("duplicate paths", multi("t", []string{"a", "f"}, []string{"a", "f"}), "duplicate")
	add("file and folder", multi("t", []string{"a"}, []string{"a", "b"}), "both a file and a directory")
	add("file and folder (a-b order)", multi("t", []string{"a"}, []string{"a-b"}, []string{"a", "c"}), "piece hashes", "both a file and a directory")
	add("multi name ..", multi("..", []string{"a"}, []string{"b"}), "relative")
	add("path as a string", infoWith("files", []any{dict("length", 40000, "path", "x")}, "name", "t", "piece length", pl, "pieces", hashes), `key "path"`)
	add("files empty", infoWith("files", []any{}, "name", "t", "piece length", pl, "pieces", ""), "empty")
	add("both length and files", infoWith("files", []any{dict("length", 40000, "path", []string{"a"})}, "length", 40000, "name", "t", "piece length", pl, "pieces", hashes), "both length and files")
	add("neither length nor files", infoWith("name", "t", "piece length", pl, "pieces", hashes), "neither")
	// geometry
	add("piece length 0", infoWith("length", 40000, "name", "t", "piece length", 0, "pieces", hashes), "piece length")
	add("piece length -16384", infoWith("length", 40000, "name", "t", "piece length", -pl, "pieces", hashes), "piece length")
	add("piece length 1 TiB", infoWith("length", 40000, "name", "t", "piece length", int64(1)<<40, "pieces", hashes), "piece length")
	add("piece length 2^63-1", infoWith("length", 40000, "name", "t", "piece length", int64(1<<63-1), "pieces", hashes), "piece length")
	add("piece length overflows int64", b(nil).raw("d4:infod6:lengthi40000e4:name1:t12:piece lengthi99999999999999999999999e6:pieces60:"+hashes+"ee"), "integer", "range", "overflow")
	add("length -1", infoWith("length", -1, "name", "t", "piece length", pl, "pieces", hashes), "length")
	add("length 0", infoWith("length", 0, "name", "t", "piece length", pl, "pieces", ""), "no content", "length 0")
	add("length 2 PiB", infoWith("length", int64(2)<<50, "name", "t", "piece length", pl, "pieces", hashes), "length")
	add("two files of 2^62 bytes", infoWith("files", []any{dict("length", int64(1)<<62, "path", []string{"a"}), dict("length", int64(1)<<62, "path", []string{"b"})}, "name", "t", "piece length", pl, "pieces", hashes), "length")
	add("file length -5", infoWith("files", []any{dict("length", -5, "path", []string{"a"}), dict("length", 40005, "path", []string{"b"})}, "name", "t", "piece length", pl, "pieces", hashes), "length")
	add("length as a string", infoWith("length", "40000", "name", "t", "piece length", pl, "pieces", hashes), "length", "string", "integer")
	add("pieces: one hash short", infoWith("length", 40000, "name", "t", "piece length", pl, "pieces", hashes[:40]), "piece hashes")
	add("pieces: one hash extra", infoWith("length", 40000, "name", "t", "piece length", pl, "pieces", hashes+hashes[:20]), "piece hashes")
	add("pieces: 59 bytes", infoWith("length", 40000, "name", "t", "piece length", pl, "pieces", hashes[:59]), "multiple of 20")
	add("pieces missing", infoWith("length", 40000, "name", "t", "piece length", pl), "piece")
	add("pieces as an integer", infoWith("length", 40000, "name", "t", "piece length", pl, "pieces", 5), `key "pieces"`)
	// structure and encoding
	add("no info dictionary", dict("announce", "http://127.0.0.1:1/a"), "no info")
	add("info is a string", dict("info", "hello"), "info", "dict")
	add("info is a list", dict("info", []any{1, 2}), "info", "dict")
	add("top level is a list", enc([]any{single("t")}), "dict", "list")
	add("trailing garbage", append(single("t"), "GARBAGE"...), "trailing")
	add("two torrents concatenated", append(single("t"), single("u")...), "trailing")
	add("deeply nested list in comment (100k)", b(nil).raw("d7:comment"+deep+"4:info").raw(string(dict("length", len(data), "name", "t", "piece length", pl, "pieces", hashes))).raw("e"), "deep", "nest", "depth")
	add("deeply nested info", dict("info", []byte(deep)), "deep", "nest", "depth")
	add("integer with leading zero", b(nil).raw("d4:infod6:lengthi040000e4:name1:t12:piece lengthi16384e6:pieces60:"+hashes+"ee"), "leading zero", "integer", "non-canonical")
	add("integer -0", b(nil).raw("d4:infod6:lengthi-0e4:name1:t12:piece lengthi16384e6:pieces0:ee"), "negative zero")
	add("empty integer", b(nil).raw("d4:infod6:lengthie4:name1:t12:piece lengthi16384e6:pieces60:"+hashes+"ee"), "integer")
	add("string length with leading zero", b(nil).raw("d4:infod6:lengthi40000e4:name01:t12:piece lengthi16384e6:pieces60:"+hashes+"ee"), "string", "leading zero", "length")
	add("string length 10^18", b(nil).raw("d4:infod6:lengthi40000e4:name1000000000000000000:t"), "string", "length", "long")
	add("string length past the end", b(nil).raw("d4:infod6:lengthi40000e4:name99:tee"), "past end")
	add("duplicate key in info", b(nil).raw("d4:infod6:lengthi40000e6:lengthi40000e4:name1:t12:piece lengthi16384e6:pieces60:"+hashes+"ee"), "duplicate")
	add("dictionary key is an integer", b(nil).raw("d4:infodi1ei2e6:lengthi40000eee"), "key")
	add("truncated in the middle", single("t")[:50], "unterminated", "unexpected end")
	add("empty file", nil, "empty", "unexpected end", "eof")
	add("HTML error page", []byte("<html><body>404 Not Found</body></html>"), "invalid", "bencode", "unexpected")
	add("random bytes", detData(4096, 99), "invalid", "bencode", "unexpected")
	add("NUL bytes", make([]byte, 1024), "invalid", "bencode", "unexpected")
	add("unterminated dictionary", b(nil).raw("d4:infod6:lengthi40000e"), "unexpected end", "eof")
	return v
}
