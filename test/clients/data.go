package clients

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
)

// FileSpec is one file of a test tree: a slash-separated relative path and
// a size in bytes.
type FileSpec struct {
	Path string
	Size int64
}

// MultiLayout is the multi-file test tree: three directory levels, a name
// with spaces, two zero-length files and sizes that do not line up with any
// power-of-two piece length, so pieces straddle file boundaries. About 11 MiB.
var MultiLayout = []FileSpec{
	{"a.bin", 3<<20 + 123},
	{"empty.txt", 0},
	{"readme.txt", 1000},
	{"sub/b.bin", 1<<20 - 7},
	{"sub/deeper/c.bin", 5<<20 + 1},
	{"sub/deeper/d.txt", 4097},
	{"sub/deeper/empty2.dat", 0},
	{"sub/x y (spaces).bin", 65537},
	{"z-last.bin", 2 << 20},
}

// WriteFile writes size deterministic pseudo-random bytes to path (parent
// directories are created). The content depends only on the base name and
// the size, so it is the same on every run.
func WriteFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := writeDet(path, size); err != nil {
		t.Fatal(err)
	}
}

func writeDet(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("test data: %w", err)
	}
	seed := sha256.Sum256([]byte("shoal-test-data:" + filepath.Base(path) + ":" + strconv.FormatInt(size, 10)))
	r := rand.NewChaCha8(seed)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("test data: %w", err)
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("test data %s: %w", path, err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("test data %s: %w", path, err)
	}
	return nil
}

// MakeSingle writes one deterministic file dir/name of size bytes and
// returns its path.
func MakeSingle(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	WriteFile(t, p, size)
	return p
}

// MakeMulti writes the MultiLayout tree below dir/name and returns its path.
func MakeMulti(t testing.TB, dir, name string) string {
	t.Helper()
	root := filepath.Join(dir, name)
	for _, f := range MultiLayout {
		WriteFile(t, filepath.Join(root, filepath.FromSlash(f.Path)), f.Size)
	}
	return root
}

// CompareOption relaxes CompareTrees.
type CompareOption int

// AllowMissingEmpty accepts zero-length files that are missing from the copy
// (transmission 3.00 does not create them).
const AllowMissingEmpty CompareOption = 1

// CompareTrees compares a file or directory tree byte for byte: the same
// regular files with the same sizes and contents, and no extra files in got.
// It returns nil when they are identical, else an error listing up to ten
// differences.
func CompareTrees(want, got string, opts ...CompareOption) error {
	allowEmpty := false
	for _, o := range opts {
		if o == AllowMissingEmpty {
			allowEmpty = true
		}
	}
	a, err := listTree(want)
	if err != nil {
		return err
	}
	b, err := listTree(got)
	if err != nil {
		return err
	}
	var diffs []string
	for _, rel := range sortedKeys(a) {
		wa := a[rel]
		gb, ok := b[rel]
		switch {
		case !ok && wa.size == 0 && allowEmpty:
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q (%d bytes)", rel, wa.size))
		case wa.size != gb.size:
			diffs = append(diffs, fmt.Sprintf("%q: size %d, want %d", rel, gb.size, wa.size))
		default:
			if off, err := firstDiff(wa.path, gb.path); err != nil {
				diffs = append(diffs, err.Error())
			} else if off >= 0 {
				diffs = append(diffs, fmt.Sprintf("%q: content differs at byte %d", rel, off))
			}
		}
	}
	for _, rel := range sortedKeys(b) {
		if _, ok := a[rel]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra file %q", rel))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... %d more", len(diffs)-10))
	}
	return fmt.Errorf("%s vs %s:\n  %s", want, got, joinLines(diffs))
}

// RequireSameTree fails the test unless CompareTrees finds no difference.
func RequireSameTree(t testing.TB, want, got string, opts ...CompareOption) {
	t.Helper()
	if err := CompareTrees(want, got, opts...); err != nil {
		t.Fatalf("data differs: %v", err)
	}
}

type fileEntry struct {
	path string
	size int64
}

func listTree(root string) (map[string]fileEntry, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	out := map[string]fileEntry{}
	if st.Mode().IsRegular() {
		out["."] = fileEntry{root, st.Size()}
		return out, nil
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("compare: %s is not a regular file", p)
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fileEntry{p, info.Size()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compare %s: %w", root, err)
	}
	return out, nil
}

// firstDiff returns the offset of the first differing byte, or -1.
func firstDiff(a, b string) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, fmt.Errorf("compare: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, fmt.Errorf("compare: %w", err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		n := min(na, nb)
		if i := mismatch(ba[:n], bb[:n]); i >= 0 {
			return off + int64(i), nil
		}
		if na != nb {
			return off + int64(n), nil
		}
		off += int64(n)
		doneA := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		doneB := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		if ea != nil && !doneA {
			return 0, fmt.Errorf("compare %s: %w", a, ea)
		}
		if eb != nil && !doneB {
			return 0, fmt.Errorf("compare %s: %w", b, eb)
		}
		if doneA || doneB {
			return -1, nil
		}
	}
}

func mismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// DiskUsage returns the bytes actually allocated on disk below path (sum of
// st_blocks*512), which for sparse downloads tracks how much was written.
func DiskUsage(path string) int64 {
	var total int64
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() {
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

func sortedKeys(m map[string]fileEntry) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for i, l := range s {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(l)
	}
	return b.String()
}
