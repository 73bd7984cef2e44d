package metainfo

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// CreateOptions configure Create.
type CreateOptions struct {
	Path string // file or directory to share
	// Trackers: the first becomes "announce"; with more than one, every
	// tracker also gets its own tier in "announce-list" (BEP 12). Empty:
	// a trackerless torrent (DHT/PEX only).
	Trackers []string
	WebSeeds []string // BEP 19 "url-list"
	// PieceLength 0 chooses one (ChoosePieceLength). Otherwise it must be a
	// power of two between 16 KiB and MaxPieceLength.
	PieceLength int64
	Private     bool
	Comment     string
	CreatedBy   string // e.g. "shoal/0.1.0"
	Workers     int    // hashing goroutines; 0 = runtime.NumCPU()
	// Progress, if set, is called with hashed and total bytes from the
	// calling goroutine, at most about ten times a second, and once at the
	// end with done == total.
	Progress func(done, total int64)
	NoDate   bool // omit "creation date" (deterministic output)
}

// ChoosePieceLength picks a power of two between 16 KiB and 16 MiB that
// gives at most about 2000 pieces (more than 1000 unless clamped).
func ChoosePieceLength(total int64) int64 {
	pl := int64(16 << 10)
	for pl < 16<<20 && (total+pl-1)/pl > 2000 {
		pl *= 2
	}
	return pl
}

type sourceFile struct {
	abs  string   // path on disk
	path []string // components below the torrent name
	size int64
}

// collect lists the files under root. Rules (documented for users):
//   - a directory is walked in lexical byte order of names; empty
//     directories are dropped, zero-length files kept;
//   - hidden files (names starting with '.') are included: they are data;
//   - the root itself may be a symlink (it is followed), but symlinks and
//     other non-regular files (devices, sockets, FIFOs) inside a directory
//     are refused with an error naming them, so a torrent never silently
//     includes data from outside the folder or loops;
//   - every name must pass ValidateComponent (valid UTF-8 and so on).
func collect(root string) (name string, multi bool, files []sourceFile, err error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", false, nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", false, nil, err
	}
	name = filepath.Base(abs)
	if err := ValidateComponent(name); err != nil {
		return "", false, nil, fmt.Errorf("%s: %w", abs, err)
	}
	if st.Mode().IsRegular() {
		return name, false, []sourceFile{{abs: abs, path: []string{name}, size: st.Size()}}, nil
	}
	if !st.IsDir() {
		return "", false, nil, fmt.Errorf("%s is not a regular file or directory", abs)
	}
	walkRoot, err := filepath.EvalSymlinks(abs) // the root may be a symlink
	if err != nil {
		return "", false, nil, err
	}
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == walkRoot {
			return nil
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		comps := strings.Split(filepath.ToSlash(rel), "/")
		if err := ValidatePath(comps); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink; shoal does not follow symlinks inside a folder (copy the file or share it separately)", p)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, sourceFile{abs: p, path: comps, size: fi.Size()})
		if len(files) > MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		return nil
	})
	if err != nil {
		return "", false, nil, err
	}
	if len(files) == 0 {
		return "", false, nil, fmt.Errorf("%s contains no files", abs)
	}
	return name, true, files, nil
}

type createInfo struct {
	Files       []createFile `bencode:"files,omitempty"`
	Length      *int64       `bencode:"length"`
	Name        string       `bencode:"name"`
	PieceLength int64        `bencode:"piece length"`
	Pieces      []byte       `bencode:"pieces"`
	Private     int64        `bencode:"private,omitempty"`
}

type createFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

type createMeta struct {
	Announce     string             `bencode:"announce,omitempty"`
	AnnounceList [][]string         `bencode:"announce-list,omitempty"`
	Comment      string             `bencode:"comment,omitempty"`
	CreatedBy    string             `bencode:"created by,omitempty"`
	CreationDate int64              `bencode:"creation date,omitempty"`
	Info         bencode.RawMessage `bencode:"info"`
	URLList      []string           `bencode:"url-list,omitempty"`
}

// Create hashes the file or directory at o.Path and returns the parsed
// metainfo and the bytes of the .torrent file. See collect for which files
// are included. Hashing uses o.Workers goroutines, each taking runs of
// whole pieces (about 4 MiB; pieces may span files) and hashing them from
// read-only mappings of the files on Linux, with ReadAt elsewhere.
func Create(ctx context.Context, o CreateOptions) (*MetaInfo, []byte, error) {
	name, multi, files, err := collect(o.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	if total == 0 {
		return nil, nil, fmt.Errorf("create: %s: nothing to share (total size is 0)", o.Path)
	}
	if total > MaxTotalLength {
		return nil, nil, fmt.Errorf("create: %s: %d bytes exceed the limit of %d", o.Path, total, int64(MaxTotalLength))
	}
	pl := o.PieceLength
	if pl == 0 {
		pl = ChoosePieceLength(total)
	}
	if pl < 16<<10 || pl > MaxPieceLength || pl&(pl-1) != 0 {
		return nil, nil, fmt.Errorf("create: piece length %d must be a power of two between 16 KiB and %d MiB", pl, MaxPieceLength>>20)
	}
	pieces, err := hashFiles(ctx, files, total, pl, o.Workers, o.Progress)
	if err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	ci := createInfo{Name: name, PieceLength: pl, Pieces: pieces}
	if o.Private {
		ci.Private = 1
	}
	if multi {
		for _, f := range files {
			ci.Files = append(ci.Files, createFile{Length: f.size, Path: f.path})
		}
	} else {
		ci.Length = &total
	}
	rawInfo, err := bencode.Marshal(ci)
	if err != nil {
		return nil, nil, fmt.Errorf("create: encode info: %w", err)
	}
	cm := createMeta{Comment: o.Comment, CreatedBy: o.CreatedBy, Info: rawInfo, URLList: o.WebSeeds}
	if len(o.Trackers) > 0 {
		cm.Announce = o.Trackers[0]
	}
	if len(o.Trackers) > 1 {
		for _, t := range o.Trackers {
			cm.AnnounceList = append(cm.AnnounceList, []string{t})
		}
	}
	if !o.NoDate {
		cm.CreationDate = time.Now().Unix()
	}
	data, err := bencode.Marshal(cm)
	if err != nil {
		return nil, nil, fmt.Errorf("create: encode torrent: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("create: produced an unreadable torrent: %w", err)
	}
	return m, data, nil
}

// batchBytes is how much a worker claims at once: several pieces for small
// piece lengths, so reads and mappings stay large, and one piece otherwise.
const batchBytes = 4 << 20

// hashFiles returns the concatenated SHA-1 of every piece of the files laid
// end to end. On Linux it hashes straight from read-only mappings of the
// files (no copy out of the page cache); elsewhere, and for short spans, it
// reads with ReadAt into a per-worker buffer.
func hashFiles(ctx context.Context, files []sourceFile, total, pl int64, workers int, progress func(done, total int64)) ([]byte, error) {
	return hashFilesMode(ctx, files, total, pl, workers, progress, readAuto)
}

// readMode selects how hashFilesMode gets the files' bytes.
type readMode int

const (
	readAuto readMode = iota // map spans of at least mmapMinSpan where canMmap, ReadAt the rest
	readCopy                 // ReadAt everything (the portable path; tests compare the two)
)

func hashFilesMode(ctx context.Context, files []sourceFile, total, pl int64, workers int, progress func(done, total int64), mode readMode) ([]byte, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	numPieces := (total + pl - 1) / pl
	perBatch := max(1, batchBytes/pl)
	numBatches := (numPieces + perBatch - 1) / perBatch
	workers = int(min(int64(workers), numBatches))

	// geometry: an Info used only for Spans
	geo := &Info{PieceLength: pl, total: total, Files: make([]File, len(files))}
	var off int64
	for k, f := range files {
		geo.Files[k] = File{Length: f.size, Offset: off}
		off += f.size
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]byte, numPieces*20)
	var next, done atomic.Int64
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &batchHasher{files: files, pl: pl, bufSize: perBatch * pl, mode: mode, h: sha1.New()}
			var spans []Span
			for ctx.Err() == nil {
				b := next.Add(1) - 1
				if b >= numBatches {
					return
				}
				first := b * perBatch
				last := min(first+perBatch, numPieces)
				start := first * pl
				n := min(last*pl, total) - start
				spans = geo.AppendSpans(spans[:0], start, n)
				if err := w.hashBatch(spans, n, out[first*20:last*20]); err != nil {
					fail(err)
					return
				}
				done.Add(n)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	if progress != nil {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
	loop:
		for {
			select {
			case <-finished:
				break loop
			case <-tick.C:
				progress(done.Load(), total)
			}
		}
	} else {
		<-finished
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if progress != nil {
		progress(total, total)
	}
	return out, nil
}
