package metainfo

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime/debug"
	"unsafe"
)

// mmapMinSpan is the shortest span hashFiles maps rather than reads: below
// it the open/mmap/munmap system calls cost more than copying the bytes.
const mmapMinSpan = 256 << 10

// batchHasher hashes the pieces of one batch (a run of whole pieces) for
// one hashFiles worker. It is owned by that worker goroutine; every field
// is static after construction except the per-batch scratch (buf, parts,
// sum), which is reused from batch to batch.
type batchHasher struct {
	files   []sourceFile
	pl      int64
	bufSize int64 // capacity needed for a whole batch read with ReadAt
	mode    readMode
	h       hash.Hash // for pieces that span parts
	buf     []byte    // ReadAt target, allocated on first use
	parts   []part    // the current batch's bytes, in order
	sum     [20]byte
}

// part is one contiguous piece of a batch's bytes: a slice of a mapping of
// one file, or of buf (adjacent read spans are merged into one part).
type part struct {
	data    []byte
	mapping []byte // non-nil: data is inside this mapping, unmapped after the batch
	file    int    // for errors (the first file of a merged buffer part)
	off     int64  // data's offset in the batch, for buffer parts
}

// hashBatch writes the SHA-1 of each piece of the batch made of spans (n
// bytes in all, pieces of w.pl bytes but the torrent's last) into out, 20
// bytes per piece.
func (w *batchHasher) hashBatch(spans []Span, n int64, out []byte) error {
	defer w.release()
	if err := w.load(spans); err != nil {
		return err
	}
	return w.hashParts(n, out)
}

// load maps or reads each span into w.parts.
func (w *batchHasher) load(spans []Span) error {
	var pos int64 // offset in the batch
	for _, s := range spans {
		f := w.files[s.File]
		fd, err := os.Open(f.abs)
		if err != nil {
			return err
		}
		mapped := false
		if canMmap && w.mode == readAuto && s.Length >= mmapMinSpan {
			mapped, err = w.mapSpan(fd, s)
		}
		if err == nil && !mapped {
			err = w.readSpan(fd, s, pos)
		}
		fd.Close()
		if err != nil {
			return err
		}
		pos += s.Length
	}
	return nil
}

// mapSpan appends a mapping of span s of the open file fd to w.parts,
// after checking that the file still holds the span (a mapping past the
// end of a file faults). It returns false, and no error, when the file
// cannot be mapped (a file system without mmap): the caller reads it.
func (w *batchHasher) mapSpan(fd *os.File, s Span) (bool, error) {
	fi, err := fd.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() < s.FileOffset+s.Length {
		return false, fmt.Errorf("%s: file shrank while hashing (%d bytes, need %d)", w.files[s.File].abs, fi.Size(), s.FileOffset+s.Length)
	}
	data, mapping, err := mapRange(fd, s.FileOffset, s.Length)
	if err != nil {
		return false, nil
	}
	w.parts = append(w.parts, part{data: data, mapping: mapping, file: s.File})
	return true, nil
}

// readSpan reads span s of the open file fd into w.buf at the span's offset
// pos in the batch, merging it with the previous part when that one is in
// the buffer too.
func (w *batchHasher) readSpan(fd *os.File, s Span, pos int64) error {
	if w.buf == nil {
		w.buf = make([]byte, w.bufSize)
	}
	dst := w.buf[pos : pos+s.Length]
	n, err := fd.ReadAt(dst, s.FileOffset)
	if int64(n) < s.Length {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%s: file shrank while hashing (read %d of %d bytes at offset %d)", w.files[s.File].abs, n, s.Length, s.FileOffset)
		}
		return err
	}
	if k := len(w.parts) - 1; k >= 0 && w.parts[k].mapping == nil {
		p := &w.parts[k]
		p.data = w.buf[p.off : pos+s.Length]
		return nil
	}
	w.parts = append(w.parts, part{data: dst, file: s.File, off: pos})
	return nil
}

// release unmaps the batch's mappings and empties w.parts.
func (w *batchHasher) release() {
	for i := range w.parts {
		if m := w.parts[i].mapping; m != nil {
			_ = unmap(m) // fails only for a bad address, which would be a bug here
		}
		w.parts[i] = part{}
	}
	w.parts = w.parts[:0]
}

// hashParts hashes w.parts (n bytes) piece by piece into out. A page of a
// mapping that can no longer be read (the file was truncated meanwhile, or
// an I/O error) raises SIGBUS; with SetPanicOnFault that becomes a panic
// in this goroutine, recovered here into an error.
func (w *batchHasher) hashParts(n int64, out []byte) (err error) {
	if w.mapped() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(interface{ Addr() uintptr })
				if !ok {
					panic(r)
				}
				err = w.faultError(f.Addr())
			}
		}()
	}
	k, pos := 0, int64(0) // current part, offset in it
	for i := 0; i < len(out)/20; i++ {
		need := min(w.pl, n)
		n -= need
		for k < len(w.parts) && pos == int64(len(w.parts[k].data)) {
			k, pos = k+1, 0
		}
		if k == len(w.parts) {
			return errors.New("internal error: batch shorter than its pieces")
		}
		if d := w.parts[k].data[pos:]; int64(len(d)) >= need {
			w.sum = sha1.Sum(d[:need])
			pos += need
		} else {
			w.h.Reset()
			for need > 0 {
				for k < len(w.parts) && pos == int64(len(w.parts[k].data)) {
					k, pos = k+1, 0
				}
				if k == len(w.parts) {
					return errors.New("internal error: batch shorter than its pieces")
				}
				d := w.parts[k].data[pos:]
				c := min(need, int64(len(d)))
				w.h.Write(d[:c])
				pos += c
				need -= c
			}
			w.h.Sum(w.sum[:0])
		}
		copy(out[i*20:], w.sum[:])
	}
	return nil
}

func (w *batchHasher) mapped() bool {
	for _, p := range w.parts {
		if p.mapping != nil {
			return true
		}
	}
	return false
}

// faultError names the file whose mapping holds the faulting address.
func (w *batchHasher) faultError(addr uintptr) error {
	for _, p := range w.parts {
		if m := p.mapping; m != nil {
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
			if addr >= lo && addr < lo+uintptr(len(m)) {
				return fmt.Errorf("%s: file shrank or became unreadable while hashing (fault at byte %d of a mapping)", w.files[p.file].abs, addr-lo)
			}
		}
	}
	return fmt.Errorf("file shrank or became unreadable while hashing (fault at %#x)", addr)
}
