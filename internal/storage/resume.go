package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// resumeVersion is bumped when the record's meaning changes; other
// versions are ignored (the content is re-verified).
const resumeVersion = 1

// maxResumeSize caps a resume record read from disk.
const maxResumeSize = 64 << 20

// record is the bencoded resume file:
//
//	d
//	  4:final   i0e|i1e    written by SaveResumeFinal (clean exit)
//	  5:files   l d 5:mtimei<unix ns>e 4:sizei<bytes, -1 missing>e e ... e   one per Info.Files entry
//	  4:have    <bitfield bytes, wire order>
//	  9:info-hash 20:<sha1>
//	  6:pieces  i<number of pieces>e
//	  7:version i1e
//	e
type record struct {
	Final    int64       `bencode:"final"`
	Files    []fileStamp `bencode:"files"`
	Have     []byte      `bencode:"have"`
	InfoHash []byte      `bencode:"info-hash"`
	Pieces   int64       `bencode:"pieces"`
	Version  int64       `bencode:"version"`
}

type fileStamp struct {
	MTime int64 `bencode:"mtime"`
	Size  int64 `bencode:"size"`
}

// ResumeState is what LoadResumeState learned from a resume record.
type ResumeState struct {
	// Have holds pieces that are complete without hashing.
	Have bitfield.Bitfield
	// Check holds pieces that must be hashed before they are trusted or
	// re-downloaded (they may be complete). Have and Check are disjoint.
	Check bitfield.Bitfield
	// Changed lists the indices of content files whose size or mtime
	// differ from the record.
	Changed []int
	// Found is true when a valid record for this torrent was read. When it
	// is false, Check holds every piece (the caller may skip verification
	// if storage has no data: Files.Exists).
	Found bool
}

// LoadResume is the short form of LoadResumeState: have is the trusted
// set; trusted is true when a record was found and nothing needs checking.
// When trusted is false the caller hashes the pieces not in have (Check
// from LoadResumeState names the exact, usually much smaller, set).
func LoadResume(path string, info *metainfo.Info, root string) (have bitfield.Bitfield, trusted bool, err error) {
	st, err := LoadResumeState(path, info, root)
	if err != nil {
		return st.Have, false, err
	}
	return st.Have, st.Found && st.Check.Count() == 0, nil
}

// LoadResumeState reads the record at path and compares it with the files
// under root (see the package doc for the rules). A missing, corrupt or
// foreign record is not an error: Found is false and every piece is in
// Check. err is only for failures to read path or stat files.
func LoadResumeState(path string, info *metainfo.Info, root string) (ResumeState, error) {
	n := info.NumPieces()
	st := ResumeState{Have: bitfield.New(n), Check: bitfield.New(n)}
	st.Check.SetAll()
	rec, ok, err := readRecord(path, info)
	if err != nil || !ok {
		return st, err
	}
	have, err := bitfield.FromBytes(rec.Have, n)
	if err != nil {
		return st, nil
	}
	now, err := stampFiles(info, root)
	if err != nil {
		return st, err
	}
	st.Found = true
	st.Have = have
	st.Check = bitfield.New(n)
	for k, f := range info.Files {
		if f.Padding || f.Length == 0 || now[k] == rec.Files[k] {
			continue
		}
		st.Changed = append(st.Changed, k)
		distrust := now[k].Size != rec.Files[k].Size || rec.Final == 1
		first, last := info.FilePieces(k)
		for p := first; p <= last; p++ {
			if distrust {
				st.Have.Clear(p)
			}
			if !st.Have.Has(p) {
				st.Check.Set(p)
			}
		}
	}
	return st, nil
}

func readRecord(path string, info *metainfo.Info) (record, bool, error) {
	var rec record
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("storage: resume: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResumeSize+1))
	if err != nil {
		return rec, false, fmt.Errorf("storage: resume: %w", err)
	}
	if len(data) > maxResumeSize || bencode.Unmarshal(data, &rec) != nil {
		return rec, false, nil // corrupt: verify instead
	}
	ih := info.Hash()
	ok := rec.Version == resumeVersion && bytes.Equal(rec.InfoHash, ih[:]) &&
		rec.Pieces == int64(info.NumPieces()) && len(rec.Files) == len(info.Files)
	return rec, ok, nil
}

// stampFiles returns every file's current size (-1 if missing) and mtime.
// Padding files are not on disk and get a zero stamp.
func stampFiles(info *metainfo.Info, root string) ([]fileStamp, error) {
	out := make([]fileStamp, len(info.Files))
	r, err := os.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		for k, f := range info.Files {
			if !f.Padding {
				out[k].Size = -1
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: resume: %w", err)
	}
	defer r.Close()
	for k, f := range info.Files {
		if f.Padding {
			continue
		}
		rel, err := relPath(info, k)
		if err != nil {
			return nil, err
		}
		fi, err := r.Stat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out[k].Size = -1
		case err != nil:
			return nil, fmt.Errorf("storage: resume: %w", err)
		default:
			out[k] = fileStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
		}
	}
	return out, nil
}

// SaveResume records have and the files' current sizes and mtimes at path,
// atomically. Call Sync on the storage first. This is the periodic save:
// after a crash, files newer than the record are explained by writes to
// incomplete pieces (see the package doc).
func SaveResume(path string, info *metainfo.Info, root string, have bitfield.Bitfield) error {
	return saveResume(path, info, root, have, false)
}

// SaveResumeFinal is SaveResume for a clean exit, after the last write and
// Sync: on the next start any file changed since is fully re-checked.
func SaveResumeFinal(path string, info *metainfo.Info, root string, have bitfield.Bitfield) error {
	return saveResume(path, info, root, have, true)
}

func saveResume(path string, info *metainfo.Info, root string, have bitfield.Bitfield, final bool) error {
	if have.Len() != info.NumPieces() {
		return fmt.Errorf("storage: resume: bitfield of %d bits for %d pieces", have.Len(), info.NumPieces())
	}
	stamps, err := stampFiles(info, root)
	if err != nil {
		return err
	}
	ih := info.Hash()
	rec := record{Files: stamps, Have: have.Bytes(), InfoHash: ih[:], Pieces: int64(info.NumPieces()), Version: resumeVersion}
	if final {
		rec.Final = 1
	}
	data, err := bencode.Marshal(rec)
	if err != nil {
		return fmt.Errorf("storage: resume: %w", err)
	}
	return writeAtomic(path, data)
}

// writeAtomic writes data to path via a synced temp file and a rename, then
// syncs the directory, so a crash leaves either the old or the new record.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: resume: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("storage: resume: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storage: resume: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
