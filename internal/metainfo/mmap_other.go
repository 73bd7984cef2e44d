//go:build !linux

package metainfo

import (
	"errors"
	"os"
)

// canMmap reports whether hashFiles may map files instead of reading them;
// elsewhere than Linux it always reads them with ReadAt.
const canMmap = false

// mapRange is not used when canMmap is false.
func mapRange(f *os.File, off, n int64) (data, mapping []byte, err error) {
	return nil, nil, errors.ErrUnsupported
}

// unmap is not used when canMmap is false.
func unmap(mapping []byte) error { return nil }
