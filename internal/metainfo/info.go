package metainfo

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// Limits applied by ParseInfo. They are generous for real content and keep a
// hostile info dictionary from making callers allocate without bound.
const (
	// MaxPieceLength is the largest piece length accepted (64 MiB); engines
	// hold whole pieces in memory while hashing.
	MaxPieceLength = 64 << 20
	// MaxTotalLength is the largest torrent accepted (1 PiB).
	MaxTotalLength = 1 << 50
	// MaxFiles is the most files one torrent may list.
	MaxFiles = 1 << 20
	// MaxInfoSize is the largest info dictionary accepted, in bytes (also the
	// cap for metadata fetched from peers with ut_metadata).
	MaxInfoSize = 64 << 20
)

// File is one file in a torrent's byte space. All fields are static after
// ParseInfo.
type File struct {
	// Path holds the components below the torrent's name, already validated
	// (see ValidateComponent); for a single-file torrent it is []string{Name}.
	Path   []string
	Length int64
	// Offset is the byte offset of the file in the torrent's byte space.
	Offset int64
	// Padding marks a BEP 47 padding file (attr contains 'p'): never
	// written to disk, reads as zeros.
	Padding bool
}

// Info is a parsed info dictionary. It is immutable after ParseInfo and
// safe to share between goroutines.
type Info struct {
	Name        string
	PieceLength int64
	Pieces      []byte // concatenated 20-byte SHA-1 hashes
	Private     bool
	Files       []File // always filled (one entry for a single file), with offsets
	MultiFile   bool   // the info dictionary had "files"
	// Raw is the exact bencoded info dictionary: its SHA-1 is the info-hash
	// and it is what ut_metadata serves.
	Raw []byte

	total int64
}

type rawInfo struct {
	Name        string     `bencode:"name"`
	PieceLength int64      `bencode:"piece length"`
	Pieces      []byte     `bencode:"pieces"`
	Private     int64      `bencode:"private"`
	Length      *int64     `bencode:"length"`
	Files       *[]rawFile `bencode:"files"`
}

type rawFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
	Attr   string   `bencode:"attr"`
}

// parseLimits accepts out-of-order dictionary keys (some creators emit
// them); the info-hash is taken over the raw bytes, so this is safe.
var parseLimits = bencode.Limits{
	MaxDepth:     bencode.DefaultLimits.MaxDepth,
	MaxStringLen: bencode.DefaultLimits.MaxStringLen,
	MaxItems:     bencode.DefaultLimits.MaxItems,
	Lenient:      true,
}

// ErrInvalid is wrapped by every validation error from ParseInfo and Parse.
var ErrInvalid = errors.New("metainfo: invalid torrent")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ParseInfo decodes and validates a bencoded info dictionary. It checks:
// a valid name; 0 < piece length <= MaxPieceLength (powers of two are not
// required when reading); pieces is exactly 20 bytes per piece for the total
// length; file lengths >= 0 and a total in (0, MaxTotalLength]; at most
// MaxFiles files; every path valid (ValidatePath); no two content files with
// the same path and no path that is both a file and a directory (padding
// files are exempt: they are never written). raw is copied.
func ParseInfo(raw []byte) (*Info, error) {
	if len(raw) > MaxInfoSize {
		return nil, invalid("info dictionary of %d bytes exceeds %d", len(raw), MaxInfoSize)
	}
	var ri rawInfo
	if err := bencode.UnmarshalLimits(raw, &ri, parseLimits); err != nil {
		return nil, fmt.Errorf("%w: info dictionary: %w", ErrInvalid, err)
	}
	if err := ValidateComponent(ri.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	if ri.PieceLength <= 0 || ri.PieceLength > MaxPieceLength {
		return nil, invalid("piece length %d out of range (1..%d)", ri.PieceLength, MaxPieceLength)
	}
	if len(ri.Pieces)%20 != 0 {
		return nil, invalid("pieces length %d is not a multiple of 20", len(ri.Pieces))
	}
	info := &Info{
		Name:        ri.Name,
		PieceLength: ri.PieceLength,
		Pieces:      ri.Pieces,
		Private:     ri.Private == 1,
		Raw:         append([]byte(nil), raw...),
	}
	switch {
	case ri.Files != nil && ri.Length != nil:
		return nil, invalid("both length and files present")
	case ri.Files != nil:
		info.MultiFile = true
		if len(*ri.Files) == 0 {
			return nil, invalid("files list is empty")
		}
		if len(*ri.Files) > MaxFiles {
			return nil, invalid("%d files exceed the limit of %d", len(*ri.Files), MaxFiles)
		}
		info.Files = make([]File, len(*ri.Files))
		for k, f := range *ri.Files {
			if err := ValidatePath(f.Path); err != nil {
				return nil, invalid("file %d: %v", k, err)
			}
			info.Files[k] = File{Path: f.Path, Length: f.Length, Padding: strings.ContainsRune(f.Attr, 'p')}
		}
	case ri.Length != nil:
		info.Files = []File{{Path: []string{ri.Name}, Length: *ri.Length}}
	default:
		return nil, invalid("neither length nor files present")
	}
	var off int64
	for k := range info.Files {
		f := &info.Files[k]
		if f.Length < 0 || f.Length > MaxTotalLength {
			return nil, invalid("file %q: length %d out of range", strings.Join(f.Path, "/"), f.Length)
		}
		f.Offset = off
		off += f.Length
		if off > MaxTotalLength {
			return nil, invalid("total length exceeds %d bytes", int64(MaxTotalLength))
		}
	}
	if off == 0 {
		return nil, invalid("torrent has no content (total length 0)")
	}
	info.total = off
	want := (off + ri.PieceLength - 1) / ri.PieceLength
	if int64(len(ri.Pieces)/20) != want {
		return nil, invalid("%d piece hashes for %d bytes in pieces of %d (want %d)",
			len(ri.Pieces)/20, off, ri.PieceLength, want)
	}
	if err := checkConflicts(info.Files); err != nil {
		return nil, err
	}
	return info, nil
}

// checkConflicts refuses duplicate content paths and a path used both as a
// file and as a directory.
func checkConflicts(files []File) error {
	paths := make([]string, 0, len(files))
	for _, f := range files {
		if !f.Padding {
			paths = append(paths, strings.Join(f.Path, "/"))
		}
	}
	sort.Strings(paths)
	for k := 1; k < len(paths); k++ {
		if paths[k] == paths[k-1] {
			return invalid("duplicate file path %q", paths[k])
		}
	}
	// After sorting, "a" is followed closely by anything under "a/": but
	// "a-b" sorts between "a" and "a/b", so check every file's prefixes.
	set := make(map[string]struct{}, len(paths))
	for _, p := range paths {
		set[p] = struct{}{}
	}
	for _, p := range paths {
		for i := 0; i < len(p); i++ {
			if p[i] == '/' {
				if _, ok := set[p[:i]]; ok {
					return invalid("path %q is both a file and a directory (%q)", p[:i], p)
				}
			}
		}
	}
	return nil
}

// Hash returns the info-hash: the SHA-1 of Raw.
func (i *Info) Hash() Hash { return sha1.Sum(i.Raw) }

// NumPieces returns the number of pieces.
func (i *Info) NumPieces() int { return len(i.Pieces) / 20 }

// TotalLength returns the size of the torrent's byte space (padding included).
func (i *Info) TotalLength() int64 {
	if i.total != 0 {
		return i.total
	}
	// An Info built by hand (tests) has no cached total: sum without
	// storing, so concurrent readers never race.
	var t int64
	for _, f := range i.Files {
		t += f.Length
	}
	return t
}

// PieceOffset returns the byte offset where piece starts.
func (i *Info) PieceOffset(piece int) int64 { return int64(piece) * i.PieceLength }

// PieceSize returns the length of piece; the last piece may be shorter.
// Out-of-range pieces have size 0.
func (i *Info) PieceSize(piece int) int64 {
	if piece < 0 || piece >= i.NumPieces() {
		return 0
	}
	return min(i.PieceLength, i.TotalLength()-i.PieceOffset(piece))
}

// PieceHash returns the expected SHA-1 of piece (zero if out of range).
func (i *Info) PieceHash(piece int) [20]byte {
	var h [20]byte
	if piece >= 0 && piece < i.NumPieces() {
		copy(h[:], i.Pieces[piece*20:])
	}
	return h
}

// Span is one file's part of a byte range of the torrent.
type Span struct {
	File       int   // index into Info.Files
	FileOffset int64 // offset inside that file
	Length     int64
}

// Spans maps the torrent byte range [off, off+n) to per-file spans, in
// order. Zero-length files yield no span; padding files do (callers check
// Files[s.File].Padding). The range is clipped to the torrent's length.
func (i *Info) Spans(off, n int64) []Span {
	return i.AppendSpans(nil, off, n)
}

// AppendSpans is Spans appending to dst (to reuse a slice in hot paths).
func (i *Info) AppendSpans(dst []Span, off, n int64) []Span {
	total := i.TotalLength()
	if off < 0 || n <= 0 || off >= total {
		return dst
	}
	end := min(off+n, total)
	k := i.fileAt(off)
	for ; k < len(i.Files) && off < end; k++ {
		f := i.Files[k]
		if f.Length == 0 || f.Offset+f.Length <= off {
			continue
		}
		l := min(end, f.Offset+f.Length) - off
		dst = append(dst, Span{File: k, FileOffset: off - f.Offset, Length: l})
		off += l
	}
	return dst
}

// fileAt returns the index of the first file whose end is after off.
func (i *Info) fileAt(off int64) int {
	return sort.Search(len(i.Files), func(k int) bool {
		return i.Files[k].Offset+i.Files[k].Length > off
	})
}

// PieceFiles returns the inclusive index range of files holding bytes of
// piece. Zero-length files between first and last are inside the range.
// For an out-of-range piece it returns (0, -1).
func (i *Info) PieceFiles(piece int) (first, last int) {
	size := i.PieceSize(piece)
	if size == 0 {
		return 0, -1
	}
	off := i.PieceOffset(piece)
	return i.fileAt(off), i.fileAt(off + size - 1)
}

// FilePieces returns the inclusive range of pieces holding bytes of file f;
// (0, -1) for a zero-length file.
func (i *Info) FilePieces(f int) (first, last int) {
	if f < 0 || f >= len(i.Files) || i.Files[f].Length == 0 {
		return 0, -1
	}
	fl := i.Files[f]
	return int(fl.Offset / i.PieceLength), int((fl.Offset + fl.Length - 1) / i.PieceLength)
}
