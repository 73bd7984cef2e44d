package session

import (
	"os"
	"time"

	"github.com/shoal-p2p/shoal/internal/storage"
)

// fileWatchEvery is how often a complete torrent checks its files for
// changes made behind its back (truncation, edits, deletion).
const fileWatchEvery = 2 // seconds

// fileStamp is what we last saw of a content file on disk.
type fileStamp struct {
	size int64
	mod  time.Time
	ok   bool // the file existed
}

// stampFiles records the content files' sizes and mtimes (owner loop). It
// runs when the torrent becomes complete: from then on we no longer write,
// so any change is someone else's.
func (t *Torrent) stampFiles() {
	fs, ok := t.store.(*storage.Files)
	if !ok {
		return
	}
	t.stamps = make([]fileStamp, len(t.info.Files))
	for k := range t.info.Files {
		t.stamps[k] = statStamp(fs.Path(k))
	}
}

func statStamp(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
}

// watchFiles compares the files with their stamps. A changed file's pieces
// lose their "checked" mark, so each is hashed again before it is served
// (and dropped if it no longer matches): a seeder never serves data that
// fails its hash, even after a file was truncated or edited while running.
func (t *Torrent) watchFiles() {
	fs, ok := t.store.(*storage.Files)
	if !ok || t.stamps == nil || !t.isComplete() {
		return
	}
	for k, f := range t.info.Files {
		if f.Padding || f.Length == 0 {
			continue
		}
		now := statStamp(fs.Path(k))
		if now == t.stamps[k] {
			continue
		}
		t.stamps[k] = now
		first, last := t.info.FilePieces(k)
		t.log.Warn("file changed on disk while seeding; its pieces will be checked again before they are served",
			"file", fs.Path(k), "size", now.size, "exists", now.ok)
		for p := first; p <= last; p++ {
			t.checked.Clear(p)
		}
	}
}
