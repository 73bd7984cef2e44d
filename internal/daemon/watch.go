package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxWatchFiles bounds the .torrent files taken from the watch folder per scan.
const maxWatchFiles = 100

// watchSettle is how long a .torrent that does not parse is left alone
// after its last change: it may still be being written (a copy in
// progress), so it is tried again at a later scan before being called
// invalid.
const watchSettle = 5 * time.Second

// Watch polls dir every interval until ctx ends and adds each new
// *.torrent file. An added file is renamed to *.torrent.added (or deleted
// when Settings.RemoveWatchFile); a file that is not a valid torrent is
// renamed to *.torrent.invalid, so it is not tried again (once it has not
// changed for watchSettle: a file still being copied in is retried). Polling (not
// inotify) keeps it portable and works on network folders.
func (m *Manager) Watch(ctx context.Context, dir string, interval time.Duration) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.ScanWatch(dir)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScanWatch does one pass over the watch folder and returns how many
// torrents it added.
func (m *Manager) ScanWatch(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		m.log.Warn("watch folder", "err", err)
		return 0
	}
	added, seen := 0, 0
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.EqualFold(filepath.Ext(name), ".torrent") {
			continue
		}
		if seen++; seen > maxWatchFiles {
			break
		}
		p := filepath.Join(dir, name)
		data, err := readCapped(p, maxTorrentFile)
		if err != nil {
			m.log.Warn("watch folder: read", "file", name, "err", err)
			continue
		}
		_, err = m.AddTorrent(data, AddOptions{})
		switch {
		case err == nil || errors.Is(err, ErrExists):
			if err == nil {
				added++
			}
			if m.Settings().RemoveWatchFile {
				os.Remove(p)
			} else {
				os.Rename(p, p+".added")
			}
		default:
			if fi, serr := os.Stat(p); serr == nil && time.Since(fi.ModTime()) < watchSettle {
				continue // perhaps still being written: try again at the next scan
			}
			m.log.Warn("watch folder: not added", "file", name, "err", err)
			os.Rename(p, p+".invalid")
		}
	}
	return added
}
