package storage

import (
	"bytes"
	"testing"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

func TestFilesFDCache(t *testing.T) {
	const n = 20
	files := make([]metainfo.File, n)
	for k := range files {
		files[k] = metainfo.File{Path: []string{string(rune('a' + k))}, Length: 3, Offset: int64(3 * k)}
	}
	info := &metainfo.Info{Name: "many", PieceLength: 16, MultiFile: true, Files: files, Pieces: make([]byte, 20*4)}
	s, err := OpenFiles(t.TempDir(), info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.maxOpen = 4
	data := bytes.Repeat([]byte{7}, 3*n)
	if _, err := s.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	s.mu.Lock()
	open := len(s.open)
	s.mu.Unlock()
	if open > 4 {
		t.Errorf("%d files open, cap 4", open)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}
