package metainfo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hashTree writes files (sizes in bytes, distinct contents) under a temp
// dir and returns them as sourceFiles plus their concatenation.
func hashTree(t *testing.T, sizes []int) ([]sourceFile, []byte) {
	t.Helper()
	dir := t.TempDir()
	var files []sourceFile
	var all []byte
	for i, n := range sizes {
		data := pattern(n, byte(i+1))
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, sourceFile{abs: p, path: []string{fmt.Sprintf("f%02d", i)}, size: int64(n)})
		all = append(all, data...)
	}
	return files, all
}

// refPieces hashes all piece by piece, the definition of "pieces".
func refPieces(all []byte, pl int) []byte {
	var out []byte
	for off := 0; off < len(all); off += pl {
		h := sha1.Sum(all[off:min(off+pl, len(all))])
		out = append(out, h[:]...)
	}
	return out
}

// TestHashModesAgree checks that hashing from mappings (readAuto) and with
// ReadAt into a buffer (readCopy) both give the reference piece hashes, for
// multi-file layouts with pieces spanning files, zero-length files, files
// at unaligned offsets, files above and below mmapMinSpan, pieces smaller
// and larger than a batch, and a short last piece.
func TestHashModesAgree(t *testing.T) {
	layouts := map[string][]int{
		"single big":       {3<<20 + 12345},
		"spanning":         {0, 700_001, 0, 0, 5, 300_000, 1 << 20, 0, 262_144, 1, 2<<20 + 7, 0},
		"small files":      {100, 16384, 0, 3, 40_000, 16383, 16385, 999},
		"mapped then read": {1<<20 + 1, 17, 1<<20 - 1, 256 << 10, 256<<10 - 1},
		// a big file starting at an unaligned torrent offset: batches start
		// inside it at offsets that are not page-aligned
		"unaligned big": {100_003, 9<<20 + 5, 3},
	}
	for name, sizes := range layouts {
		files, all := hashTree(t, sizes)
		total := int64(len(all))
		for _, pl := range []int64{16 << 10, 256 << 10, 1 << 20, 8 << 20} {
			want := refPieces(all, int(pl))
			for _, mode := range []readMode{readAuto, readCopy} {
				for _, workers := range []int{1, 3} {
					got, err := hashFilesMode(context.Background(), files, total, pl, workers, nil, mode)
					if err != nil {
						t.Fatalf("%s pl=%d mode=%d workers=%d: %v", name, pl, mode, workers, err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s pl=%d mode=%d workers=%d: piece hashes differ from the reference", name, pl, mode, workers)
					}
				}
			}
		}
	}
}

// TestHashBatchMaps checks that readAuto really maps large spans (where the
// platform can) and reads short ones, so TestHashModesAgree compares two
// different paths.
func TestHashBatchMaps(t *testing.T) {
	files, all := hashTree(t, []int{1 << 20, 100, 1 << 20})
	total := int64(len(all))
	geo := &Info{PieceLength: 4 << 20, total: total, Files: []File{
		{Length: 1 << 20}, {Length: 100, Offset: 1 << 20}, {Length: 1 << 20, Offset: 1<<20 + 100},
	}}
	for _, mode := range []readMode{readAuto, readCopy} {
		w := &batchHasher{files: files, pl: 4 << 20, bufSize: 4 << 20, mode: mode, h: sha1.New()}
		if err := w.load(geo.Spans(0, total)); err != nil {
			t.Fatal(err)
		}
		var mapped, parts int
		for _, p := range w.parts {
			if p.mapping != nil {
				mapped++
			}
		}
		parts = len(w.parts)
		out := make([]byte, 20)
		if err := w.hashParts(total, out); err != nil {
			t.Fatal(err)
		}
		w.release()
		if !bytes.Equal(out, refPieces(all, 4<<20)) {
			t.Errorf("mode %d: wrong hash", mode)
		}
		switch {
		case mode == readCopy && (mapped != 0 || parts != 1):
			t.Errorf("readCopy: %d parts, %d mapped; want 1 merged buffer part", parts, mapped)
		case mode == readAuto && canMmap && (mapped != 2 || parts != 3):
			t.Errorf("readAuto: %d parts, %d mapped; want 3 parts, 2 mapped", parts, mapped)
		}
	}
}

// TestHashShrunkFile: a file shorter than when it was listed gives an error
// naming it, on both paths.
func TestHashShrunkFile(t *testing.T) {
	for _, size := range []int{1 << 20, 1000} {
		files, all := hashTree(t, []int{size, size})
		if err := os.Truncate(files[1].abs, int64(size/2)); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []readMode{readAuto, readCopy} {
			_, err := hashFilesMode(context.Background(), files, int64(len(all)), 16<<10, 2, nil, mode)
			if err == nil || !strings.Contains(err.Error(), "shrank") || !strings.Contains(err.Error(), files[1].abs) {
				t.Errorf("size %d mode %d: err = %v, want a 'shrank' error naming %s", size, mode, err, files[1].abs)
			}
		}
	}
}

// TestHashProgressAndCancel: progress ends with done == total; a cancelled
// context stops hashing with its error.
func TestHashProgressAndCancel(t *testing.T) {
	files, all := hashTree(t, []int{5 << 20, 3})
	total := int64(len(all))
	var last [2]int64
	calls := 0
	if _, err := hashFilesMode(context.Background(), files, total, 256<<10, 2, func(d, tot int64) { last = [2]int64{d, tot}; calls++ }, readAuto); err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != [2]int64{total, total} {
		t.Errorf("progress: %d calls, last %v, want last (%d, %d)", calls, last, total, total)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := hashFilesMode(ctx, files, total, 256<<10, 2, nil, readAuto); err != context.Canceled {
		t.Errorf("cancelled: err = %v", err)
	}
}
