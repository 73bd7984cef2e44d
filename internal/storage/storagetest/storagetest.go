// Package storagetest is the conformance suite every storage backend runs
// (DESIGN habit 6): byte-space reads and writes across file boundaries,
// zero-length and padding files, unwritten regions, verification, and
// persistence across Close for backends that persist.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/storage"
)

// Backend is one storage implementation under test.
type Backend struct {
	// Open opens the storage for the Info given to the constructor. For a
	// persistent backend a second Open after Close sees the same data.
	Open       func() (storage.Storage, error)
	Persistent bool
}

// Layout of the test torrent (piece length 8, total 20 bytes):
//
//	file  0 a      5 bytes  [0,5)
//	file  1 e1     0 bytes
//	file  2 .pad   3 bytes  [5,8)   padding
//	file  3 d/b   10 bytes  [8,18)
//	file  4 d/e2   0 bytes
//	file  5 c      2 bytes  [18,20)
var layout = []struct {
	path []string
	len  int64
	pad  bool
}{
	{[]string{"a"}, 5, false},
	{[]string{"e1"}, 0, false},
	{[]string{".pad", "3"}, 3, true},
	{[]string{"d", "b"}, 10, false},
	{[]string{"d", "e2"}, 0, false},
	{[]string{"c"}, 2, false},
}

// Torrent returns the suite's test torrent and its content (zeros in the
// padding file), with correct piece hashes.
func Torrent(t testing.TB) (*metainfo.Info, []byte) {
	t.Helper()
	var content []byte
	files := make([]any, len(layout))
	for k, f := range layout {
		for i := int64(0); i < f.len; i++ {
			b := byte(0)
			if !f.pad {
				b = byte(k*31 + int(i)*7 + 1)
			}
			content = append(content, b)
		}
		d := map[string]any{"length": f.len, "path": f.path}
		if f.pad {
			d["attr"] = "p"
		}
		files[k] = d
	}
	const pl = 8
	var pieces []byte
	for off := 0; off < len(content); off += pl {
		h := sha1.Sum(content[off:min(off+pl, len(content))])
		pieces = append(pieces, h[:]...)
	}
	raw, err := bencode.Marshal(map[string]any{"name": "t", "piece length": int64(pl), "pieces": pieces, "files": files})
	if err != nil {
		t.Fatal(err)
	}
	info, err := metainfo.ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info, content
}

// Run runs the conformance suite; newBackend is called once per subtest.
func Run(t *testing.T, newBackend func(t *testing.T, info *metainfo.Info) Backend) {
	open := func(t *testing.T) (storage.Storage, *metainfo.Info, []byte, Backend) {
		info, content := Torrent(t)
		b := newBackend(t, info)
		s, err := b.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, info, content, b
	}

	t.Run("UnwrittenReadsZeros", func(t *testing.T) {
		s, _, content, _ := open(t)
		got := make([]byte, len(content))
		if n, err := s.ReadAt(got, 0); n != len(content) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		if !bytes.Equal(got, make([]byte, len(content))) {
			t.Fatalf("unwritten storage reads %x", got)
		}
	})

	t.Run("WriteReadAcrossFiles", func(t *testing.T) {
		s, _, content, _ := open(t)
		// write in chunks of 3 that straddle every boundary
		for off := 0; off < len(content); off += 3 {
			end := min(off+3, len(content))
			if n, err := s.WriteAt(content[off:end], int64(off)); n != end-off || err != nil {
				t.Fatalf("WriteAt(%d) = %d, %v", off, n, err)
			}
		}
		for off := 0; off < len(content); off++ {
			for l := 1; off+l <= len(content); l++ {
				got := make([]byte, l)
				n, err := s.ReadAt(got, int64(off))
				if n != l || (err != nil && err != io.EOF) || !bytes.Equal(got, content[off:off+l]) {
					t.Fatalf("ReadAt(%d,%d) = %d %v %x want %x", off, l, n, err, got, content[off:off+l])
				}
			}
		}
	})

	t.Run("PartialWriteLeavesZeros", func(t *testing.T) {
		s, _, content, _ := open(t)
		if _, err := s.WriteAt(content[9:12], 9); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(content))
		s.ReadAt(got, 0)
		want := make([]byte, len(content))
		copy(want[9:12], content[9:12])
		if !bytes.Equal(got, want) {
			t.Fatalf("got %x want %x", got, want)
		}
	})

	t.Run("PaddingReadsZeros", func(t *testing.T) {
		s, _, content, _ := open(t)
		if _, err := s.WriteAt(content, 0); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 3)
		if _, err := s.ReadAt(got, 5); err != nil || !bytes.Equal(got, []byte{0, 0, 0}) {
			t.Fatalf("padding reads %x, %v", got, err)
		}
	})

	t.Run("Bounds", func(t *testing.T) {
		s, _, content, _ := open(t)
		if _, err := s.WriteAt([]byte{1, 2}, int64(len(content)-1)); err == nil {
			t.Error("write past the end accepted")
		}
		if _, err := s.WriteAt([]byte{1}, -1); err == nil {
			t.Error("write at negative offset accepted")
		}
		if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
			t.Error("read at negative offset accepted")
		}
		buf := make([]byte, 4)
		n, err := s.ReadAt(buf, int64(len(content)-2))
		if n != 2 || err != io.EOF {
			t.Errorf("read across the end = %d, %v; want 2, EOF", n, err)
		}
		if n, err := s.ReadAt(buf, int64(len(content))); n != 0 || err != io.EOF {
			t.Errorf("read at the end = %d, %v; want 0, EOF", n, err)
		}
	})

	t.Run("Verify", func(t *testing.T) {
		s, info, content, _ := open(t)
		have, err := storage.Verify(context.Background(), s, info, 2, nil)
		if err != nil || have.Count() != 0 {
			t.Fatalf("empty storage verifies %d pieces, %v", have.Count(), err)
		}
		// piece 1 = [8,16) only
		if _, err := s.WriteAt(content[8:16], 8); err != nil {
			t.Fatal(err)
		}
		var last int64
		have, err = storage.Verify(context.Background(), s, info, 0, func(done, total int64) { last = done })
		if err != nil || have.Count() != 1 || !have.Has(1) || last != int64(len(content)) {
			t.Fatalf("have %v (count %d), last progress %d, %v", have.Bytes(), have.Count(), last, err)
		}
		s.WriteAt(content, 0)
		have, err = storage.Verify(context.Background(), s, info, 3, nil)
		if err != nil || !have.All() {
			t.Fatalf("full storage verifies %d pieces, %v", have.Count(), err)
		}
		ok, err := storage.HashPiece(s, info, 2, nil)
		if !ok || err != nil {
			t.Fatalf("HashPiece(last) = %v, %v", ok, err)
		}
		s.WriteAt([]byte{0xff}, 19)
		if ok, _ := storage.HashPiece(s, info, 2, make([]byte, 8)); ok {
			t.Fatal("corrupted piece verifies")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s, _, content, _ := open(t)
		var wg sync.WaitGroup
		for off := 0; off < len(content); off += 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				end := min(off+2, len(content))
				s.WriteAt(content[off:end], int64(off))
				s.ReadAt(make([]byte, 4), int64(off))
			}()
		}
		wg.Wait()
		got := make([]byte, len(content))
		s.ReadAt(got, 0)
		if !bytes.Equal(got, content) {
			t.Fatalf("got %x want %x", got, content)
		}
	})

	t.Run("Persistence", func(t *testing.T) {
		s, _, content, b := open(t)
		if !b.Persistent {
			t.Skip("backend does not persist")
		}
		if _, err := s.WriteAt(content, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("read after Close: %v, want ErrClosed", err)
		}
		s2, err := b.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		got := make([]byte, len(content))
		if _, err := s2.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			t.Fatalf("after reopen got %x want %x", got, content)
		}
	})
}
