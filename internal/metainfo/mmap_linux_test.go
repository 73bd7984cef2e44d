//go:build linux

package metainfo

import (
	"crypto/sha1"
	"os"
	"strings"
	"testing"
)

// TestHashMappedFileTruncated: a file truncated after it was mapped makes
// the hashing goroutine fault (SIGBUS); that must come back as an error
// naming the file, not crash the process.
func TestHashMappedFileTruncated(t *testing.T) {
	files, all := hashTree(t, []int{2 << 20})
	total := int64(len(all))
	geo := &Info{PieceLength: 1 << 20, total: total, Files: []File{{Length: total}}}
	w := &batchHasher{files: files, pl: 1 << 20, bufSize: 4 << 20, mode: readAuto, h: sha1.New()}
	if err := w.load(geo.Spans(0, total)); err != nil {
		t.Fatal(err)
	}
	defer w.release()
	if len(w.parts) != 1 || w.parts[0].mapping == nil {
		t.Fatalf("expected one mapped part, got %d parts", len(w.parts))
	}
	if err := os.Truncate(files[0].abs, 1000); err != nil {
		t.Fatal(err)
	}
	err := w.hashParts(total, make([]byte, 40))
	if err == nil || !strings.Contains(err.Error(), "shrank") || !strings.Contains(err.Error(), files[0].abs) {
		t.Fatalf("err = %v, want a 'shrank' error naming the file", err)
	}
}
