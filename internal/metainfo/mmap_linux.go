//go:build linux

package metainfo

import (
	"os"
	"syscall"
)

// canMmap reports whether hashFiles may map files instead of reading them.
const canMmap = true

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14): fill the page tables
// of a mapping from the page cache in one call instead of one fault per
// 64 KiB. Older kernels answer EINVAL, which is ignored.
const madvPopulateRead = 22

// mapRange maps bytes [off, off+n) of f read-only and returns them as data;
// mapping is the whole (page-aligned) mapping, to be passed to unmap. n > 0.
// The caller must have checked that the file is at least off+n bytes long:
// touching a page past the end of the file raises SIGBUS.
func mapRange(f *os.File, off, n int64) (data, mapping []byte, err error) {
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	length := off + n - start
	if int64(int(length)) != length {
		return nil, nil, syscall.EFBIG
	}
	mapping, err = syscall.Mmap(int(f.Fd()), start, int(length), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	_ = syscall.Madvise(mapping, syscall.MADV_SEQUENTIAL)
	_ = syscall.Madvise(mapping, madvPopulateRead)
	return mapping[off-start:], mapping, nil
}

// unmap releases a mapping returned by mapRange.
func unmap(mapping []byte) error { return syscall.Munmap(mapping) }
