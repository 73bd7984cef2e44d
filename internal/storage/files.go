package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// DefaultMaxOpen is how many file descriptors a Files keeps open at most
// (more only while that many operations are in flight at once).
const DefaultMaxOpen = 64

// Files stores a torrent as its files under a root folder:
// root/<name> for a single file, root/<name>/<path...> for several.
//
// Directories and files are created on the first write to them; a new file
// is extended (sparse) to its final size at creation. Zero-length files are
// created by the first Sync after any write. Padding files are never
// created. Reads of missing files or unwritten regions return zeros.
type Files struct {
	info  *metainfo.Info // static after construction
	rel   []string       // static: each file's path relative to root ("" for padding)
	root  *os.Root       // static; all file-system access goes through it
	total int64          // static

	mu      sync.Mutex
	open    map[int]*handle     // guarded by mu: bounded fd cache
	clock   uint64              // guarded by mu: LRU clock
	dirty   map[int]struct{}    // guarded by mu: files written since the last Sync
	newDirs map[string]struct{} // guarded by mu: directories whose entries changed since the last Sync
	wrote   bool                // guarded by mu: any write happened
	closed  bool                // guarded by mu
	maxOpen int                 // static
}

// handle is one cached open file. refs and evicted are guarded by Files.mu.
type handle struct {
	f        *os.File
	writable bool
	refs     int
	lastUse  uint64
	evicted  bool
}

// relPath returns file k's path relative to the root, re-validating every
// component so that a hand-built Info cannot point outside the root.
func relPath(info *metainfo.Info, k int) (string, error) {
	if err := metainfo.ValidateComponent(info.Name); err != nil {
		return "", fmt.Errorf("storage: torrent name: %w", err)
	}
	var rel string
	if info.MultiFile {
		if err := metainfo.ValidatePath(info.Files[k].Path); err != nil {
			return "", fmt.Errorf("storage: file %d: %w", k, err)
		}
		rel = filepath.Join(append([]string{info.Name}, info.Files[k].Path...)...)
	} else {
		if len(info.Files) != 1 {
			return "", fmt.Errorf("storage: single-file torrent with %d files", len(info.Files))
		}
		rel = info.Name
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("storage: file path %q is not inside the folder", rel)
	}
	return rel, nil
}

// OpenFiles opens (creating if needed) the folder root and returns the
// torrent's storage in it. It refuses an Info with any unsafe path.
func OpenFiles(root string, info *metainfo.Info) (*Files, error) {
	if info == nil || len(info.Files) == 0 {
		return nil, errors.New("storage: torrent has no files")
	}
	s := &Files{
		info:    info,
		rel:     make([]string, len(info.Files)),
		total:   info.TotalLength(),
		open:    map[int]*handle{},
		dirty:   map[int]struct{}{},
		newDirs: map[string]struct{}{},
		maxOpen: DefaultMaxOpen,
	}
	var off int64
	for k, f := range info.Files {
		if f.Length < 0 || f.Offset != off {
			return nil, fmt.Errorf("storage: file %d has inconsistent geometry", k)
		}
		off += f.Length
		if f.Padding {
			continue
		}
		rel, err := relPath(info, k)
		if err != nil {
			return nil, err
		}
		s.rel[k] = rel
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s.root = r
	return s, nil
}

// Path returns where file k lives on disk ("" for padding files).
func (s *Files) Path(k int) string {
	if s.rel[k] == "" {
		return ""
	}
	return filepath.Join(s.root.Name(), s.rel[k])
}

// Exists reports whether any content file (non-empty, non-padding) exists,
// i.e. whether there is data worth verifying.
func (s *Files) Exists() bool {
	for k, f := range s.info.Files {
		if f.Padding || f.Length == 0 {
			continue
		}
		if _, err := s.root.Stat(s.rel[k]); err == nil {
			return true
		}
	}
	return false
}

// acquire returns an open handle for file k, or nil (and no error) when
// reading a file that does not exist. The caller must release a non-nil
// handle.
func (s *Files) acquire(k int, write bool) (*handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.clock++
	if h := s.open[k]; h != nil {
		if !write || h.writable {
			h.refs++
			h.lastUse = s.clock
			return h, nil
		}
		s.dropLocked(k, h) // reopen for writing
	}
	f, err := s.openFile(k, write)
	if err != nil || f == nil {
		return nil, err
	}
	h := &handle{f: f, writable: write, refs: 1, lastUse: s.clock}
	s.open[k] = h
	if len(s.open) > s.maxOpen {
		s.evictLocked()
	}
	return h, nil
}

// openFile opens file k; called with mu held.
func (s *Files) openFile(k int, write bool) (*os.File, error) {
	rel := s.rel[k]
	if !write {
		f, err := s.root.Open(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return f, nil
	}
	if dir := filepath.Dir(rel); dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	f, err := s.root.OpenFile(rel, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", rel)
	}
	if err == nil && st.Size() < s.info.Files[k].Length {
		err = f.Truncate(s.info.Files[k].Length) // sparse: holes read as zeros
		s.newDirs[filepath.Dir(rel)] = struct{}{}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	return f, nil
}

func (s *Files) dropLocked(k int, h *handle) {
	delete(s.open, k)
	h.evicted = true
	if h.refs == 0 {
		h.f.Close()
	}
}

// evictLocked closes the least recently used idle handle.
func (s *Files) evictLocked() {
	victim, oldest := -1, ^uint64(0)
	for k, h := range s.open {
		if h.refs == 0 && h.lastUse < oldest {
			victim, oldest = k, h.lastUse
		}
	}
	if victim >= 0 {
		s.dropLocked(victim, s.open[victim])
	}
}

func (s *Files) release(h *handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.refs--
	if h.evicted && h.refs == 0 {
		h.f.Close()
	}
}

// ReadAt reads the torrent byte space; see Storage for zero-fill rules.
func (s *Files) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("storage: negative offset %d", off)
	}
	if off >= s.total {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.total-off))
	pos := 0
	for _, sp := range s.info.Spans(off, int64(n)) {
		buf := p[pos : pos+int(sp.Length)]
		pos += len(buf)
		if s.info.Files[sp.File].Padding {
			clear(buf)
			continue
		}
		h, err := s.acquire(sp.File, false)
		if err != nil {
			return 0, err
		}
		if h == nil {
			clear(buf)
			continue
		}
		m, err := h.f.ReadAt(buf, sp.FileOffset)
		s.release(h)
		if errors.Is(err, io.EOF) {
			clear(buf[m:]) // file shorter than the torrent says
			err = nil
		}
		if err != nil {
			return 0, fmt.Errorf("storage: read %s: %w", s.rel[sp.File], err)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p at off in the torrent byte space, skipping padding.
// A write past the end is refused whole.
func (s *Files) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.total {
		return 0, fmt.Errorf("storage: write of %d bytes at %d outside 0..%d", len(p), off, s.total)
	}
	pos := 0
	for _, sp := range s.info.Spans(off, int64(len(p))) {
		buf := p[pos : pos+int(sp.Length)]
		if s.info.Files[sp.File].Padding {
			pos += len(buf)
			continue
		}
		h, err := s.acquire(sp.File, true)
		if err != nil {
			return pos, err
		}
		_, err = h.f.WriteAt(buf, sp.FileOffset)
		s.release(h)
		if err != nil {
			return pos, fmt.Errorf("storage: write %s: %w", s.rel[sp.File], err)
		}
		s.mu.Lock()
		s.dirty[sp.File] = struct{}{}
		s.wrote = true
		s.mu.Unlock()
		pos += len(buf)
	}
	return len(p), nil
}

// Sync fsyncs every file written since the last Sync and the directories
// that gained entries; after any write it also creates missing zero-length
// files.
func (s *Files) Sync() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	dirty, dirs, wrote := s.dirty, s.newDirs, s.wrote
	s.dirty, s.newDirs = map[int]struct{}{}, map[string]struct{}{}
	s.mu.Unlock()
	var errs []error
	if wrote {
		for k, f := range s.info.Files {
			if f.Length != 0 || f.Padding {
				continue
			}
			if _, err := s.root.Stat(s.rel[k]); errors.Is(err, fs.ErrNotExist) {
				if h, err := s.acquire(k, true); err != nil {
					errs = append(errs, err)
				} else {
					s.release(h)
					dirs[filepath.Dir(s.rel[k])] = struct{}{}
				}
			}
		}
	}
	for k := range dirty {
		h, err := s.acquire(k, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := h.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("storage: sync %s: %w", s.rel[k], err))
		}
		s.release(h)
	}
	synced := map[string]bool{}
	for d := range dirs {
		for ; !synced[d]; d = filepath.Dir(d) { // new parents too
			synced[d] = true
			if f, err := s.root.Open(d); err == nil {
				f.Sync()
				f.Close()
			}
		}
	}
	if len(errs) > 0 {
		s.mu.Lock()
		for k := range dirty {
			s.dirty[k] = struct{}{}
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close closes every file; Close does not Sync.
func (s *Files) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for k, h := range s.open {
		s.dropLocked(k, h)
	}
	return s.root.Close()
}
