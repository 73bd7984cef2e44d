package storage

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed is returned by operations on a closed Storage.
var ErrClosed = errors.New("storage: closed")

// Memory is an in-memory Storage for tests and for streaming small
// content. The byte slice is guarded by mu.
type Memory struct {
	mu     sync.RWMutex
	data   []byte
	closed bool
}

// MaxMemory caps NewMemory's size (1 GiB) so a hostile length cannot make
// it allocate without bound.
const MaxMemory = 1 << 30

// NewMemory returns a zero-filled in-memory storage of size bytes. Sizes
// above MaxMemory are clamped to zero length (every access then fails);
// callers choose memory storage only for content they know is small.
func NewMemory(size int64) Storage {
	if size < 0 || size > MaxMemory {
		size = 0
	}
	return &Memory{data: make([]byte, size)}
}

func (m *Memory) check(p []byte, off int64) error {
	if m.closed {
		return ErrClosed
	}
	if off < 0 || off > int64(len(m.data)) {
		return fmt.Errorf("storage: offset %d outside 0..%d", off, len(m.data))
	}
	return nil
}

// ReadAt implements io.ReaderAt.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(p, off); err != nil {
		return 0, err
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt; writing past the end is an error.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(p, off); err != nil {
		return 0, err
	}
	n := copy(m.data[off:], p)
	if n < len(p) {
		return n, fmt.Errorf("storage: write of %d bytes at %d passes the end (%d)", len(p), off, len(m.data))
	}
	return n, nil
}

// Sync does nothing.
func (m *Memory) Sync() error { return nil }

// Close releases the memory.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed, m.data = true, nil
	return nil
}
