package storage_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/storage"
	"github.com/shoal-p2p/shoal/internal/storage/storagetest"
)

func TestFilesLayout(t *testing.T) {
	info, content := storagetest.Torrent(t)
	root := t.TempDir()
	s, err := storage.OpenFiles(root, info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Exists() {
		t.Error("Exists before any write")
	}
	if _, err := s.WriteAt(content[9:10], 9); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(root, "t", "d", "b")
	if st, err := os.Stat(b); err != nil || st.Size() != 10 {
		t.Fatalf("d/b not created at its final size: %v %v", st, err)
	}
	if !s.Exists() {
		t.Error("Exists false after a write")
	}
	if _, err := os.Stat(filepath.Join(root, "t", "a")); !os.IsNotExist(err) {
		t.Error("file a created without a write")
	}
	if _, err := s.WriteAt(content, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "e1", "d/b", "d/e2", "c"} {
		if _, err := os.Stat(filepath.Join(root, "t", p)); err != nil {
			t.Errorf("%s missing after Sync: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "t", ".pad")); !os.IsNotExist(err) {
		t.Error("padding file written to disk")
	}
	got, _ := os.ReadFile(filepath.Join(root, "t", "d", "b"))
	if !bytes.Equal(got, content[8:18]) {
		t.Errorf("d/b = %x want %x", got, content[8:18])
	}
	if s.Path(3) != filepath.Join(root, "t", "d", "b") || s.Path(2) != "" {
		t.Errorf("Path: %q %q", s.Path(3), s.Path(2))
	}
}

func TestFilesShortFileReadsZeros(t *testing.T) {
	info, content := storagetest.Torrent(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "t", "d"), 0o755)
	os.WriteFile(filepath.Join(root, "t", "d", "b"), content[8:12], 0o644) // 4 of 10 bytes
	s, err := storage.OpenFiles(root, info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make([]byte, 10)
	if _, err := s.ReadAt(got, 8); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, content[8:12]...), make([]byte, 6)...)
	if !bytes.Equal(got, want) {
		t.Errorf("got %x want %x", got, want)
	}
}

// TestFilesHostileInfo: an Info that bypassed ParseInfo still cannot reach
// outside the root.
func TestFilesHostileInfo(t *testing.T) {
	cases := map[string]*metainfo.Info{
		"dotdot path":   {Name: "t", MultiFile: true, Files: []metainfo.File{{Path: []string{"..", "..", "evil"}, Length: 1}}},
		"absolute path": {Name: "t", MultiFile: true, Files: []metainfo.File{{Path: []string{"/tmp/evil"}, Length: 1}}},
		"dotdot name":   {Name: "..", Files: []metainfo.File{{Path: []string{".."}, Length: 1}}},
		"slash name":    {Name: "../../evil", Files: []metainfo.File{{Path: []string{"x"}, Length: 1}}},
		"bad offsets":   {Name: "t", MultiFile: true, Files: []metainfo.File{{Path: []string{"a"}, Length: 1, Offset: 5}}},
	}
	for name, info := range cases {
		info.PieceLength, info.Pieces = 16, make([]byte, 20)
		if s, err := storage.OpenFiles(t.TempDir(), info); err == nil {
			s.Close()
			t.Errorf("%s: storage.OpenFiles accepted", name)
		}
	}
	// A symlink planted inside the root that points outside it.
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "t")); err != nil {
		t.Fatal(err)
	}
	info := &metainfo.Info{Name: "t", MultiFile: true, PieceLength: 16, Pieces: make([]byte, 20),
		Files: []metainfo.File{{Path: []string{"x"}, Length: 4}}}
	s, err := storage.OpenFiles(root, info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteAt([]byte("evil"), 0); err == nil {
		t.Error("write through an escaping symlink accepted")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Error("file written outside the root")
	}
}

func TestResume(t *testing.T) {
	info, content := storagetest.Torrent(t)
	root := t.TempDir()
	rpath := filepath.Join(root, ".shoal", info.Hash().String()+".resume")
	s, err := storage.OpenFiles(root, info)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	st, err := storage.LoadResumeState(rpath, info, root)
	if err != nil || st.Found || !st.Check.All() {
		t.Fatalf("missing record: %+v %v", st, err)
	}
	// pieces 0 and 1 complete ([0,16)); piece 2 partly written
	s.WriteAt(content[:16], 0)
	s.WriteAt(content[18:19], 18)
	s.Sync()
	have, err := storage.Verify(t.Context(), s, info, 0, nil)
	if err != nil || have.Count() != 2 {
		t.Fatalf("verify: %d %v", have.Count(), err)
	}
	if err := storage.SaveResume(rpath, info, root, have); err != nil {
		t.Fatal(err)
	}
	got, trusted, err := storage.LoadResume(rpath, info, root)
	if err != nil || !trusted || !bytes.Equal(got.Bytes(), have.Bytes()) {
		t.Fatalf("unchanged: trusted=%v have=%x %v", trusted, got.Bytes(), err)
	}

	// crash after more writes: c (file 5, piece 2) and d/b (file 3, pieces 1-2) newer
	future := func(rel string) {
		p := filepath.Join(root, "t", rel)
		fi, _ := os.Stat(p)
		os.Chtimes(p, fi.ModTime(), fi.ModTime().Add(5e9))
	}
	future("c")
	future("d/b")
	st, err = storage.LoadResumeState(rpath, info, root)
	if err != nil || !st.Found || len(st.Changed) != 2 {
		t.Fatalf("periodic+changed: %+v %v", st, err)
	}
	if !st.Have.Has(0) || !st.Have.Has(1) || st.Check.Has(0) || st.Check.Has(1) || !st.Check.Has(2) {
		t.Errorf("periodic record, mtime change: have=%x check=%x; want have 0,1 check 2", st.Have.Bytes(), st.Check.Bytes())
	}
	if _, trusted, _ := storage.LoadResume(rpath, info, root); trusted {
		t.Error("trusted despite changed files")
	}

	// final record, then something edits d/b while shoal is stopped
	if err := storage.SaveResumeFinal(rpath, info, root, have); err != nil {
		t.Fatal(err)
	}
	future("d/b")
	st, _ = storage.LoadResumeState(rpath, info, root)
	if !st.Have.Has(0) || st.Have.Has(1) || !st.Check.Has(1) || !st.Check.Has(2) || st.Check.Has(0) {
		t.Errorf("final record, mtime change: have=%x check=%x; want have 0 check 1,2", st.Have.Bytes(), st.Check.Bytes())
	}

	// size change distrusts even in a periodic record
	storage.SaveResume(rpath, info, root, have)
	os.Truncate(filepath.Join(root, "t", "a"), 2)
	st, _ = storage.LoadResumeState(rpath, info, root)
	if st.Have.Has(0) || !st.Check.Has(0) || !st.Have.Has(1) {
		t.Errorf("size change: have=%x check=%x", st.Have.Bytes(), st.Check.Bytes())
	}

	// corrupt and foreign records are ignored
	os.WriteFile(rpath, []byte("garbage"), 0o644)
	if st, err := storage.LoadResumeState(rpath, info, root); err != nil || st.Found {
		t.Errorf("corrupt record: %+v %v", st, err)
	}
	other, _ := bencode.Marshal(map[string]any{"version": 1, "info-hash": make([]byte, 20), "pieces": 3, "have": []byte{0xe0}, "files": []any{}})
	os.WriteFile(rpath, other, 0o644)
	if st, _ := storage.LoadResumeState(rpath, info, root); st.Found {
		t.Error("record for another torrent accepted")
	}
	if err := storage.SaveResume(rpath, info, root, have.Clone()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(rpath))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}
