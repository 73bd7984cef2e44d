package interop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

func TestMain(m *testing.M) { os.Exit(clients.Main(m)) }

// Sizes keep the whole suite at a few minutes on 2 cores.
const (
	singleSize   = 32<<20 + 12345 // not a multiple of the piece length
	singlePiece  = 256 << 10
	multiPiece   = 64 << 10
	transferTime = 3 * time.Minute  // bound for one transfer
	announceTime = time.Minute      // bound for a client to show up at the tracker
	stallTime    = 45 * time.Second // a transfer with no new bytes on disk for this long fails
)

// fixture is one torrent's content, .torrent and tracker. Static after
// construction.
type fixture struct {
	parent  string // directory that holds the content (DATA_PARENT)
	path    string // parent/name: the file or the tree
	torrent string
	info    clients.Torrent
	tracker *clients.Tracker
}

// kinds of content every transfer test runs with.
var kinds = []string{"single", "multi"}

// newFixture makes deterministic content of the given kind ("single": one
// 32 MiB file; "multi": clients.MultiLayout below "multi tree"), a .torrent
// made by mktorrent (independent of shoal's code) announcing to a fresh
// opentracker that whitelists it.
func newFixture(t *testing.T, kind string) *fixture {
	t.Helper()
	clients.Require(t, clients.Opentracker, clients.Mktorrent)
	f := &fixture{parent: t.TempDir()}
	piece := int64(multiPiece)
	if kind == "single" {
		f.path = clients.MakeSingle(t, f.parent, "single.bin", singleSize)
		piece = singlePiece
	} else {
		f.path = clients.MakeMulti(t, f.parent, "multi tree")
	}
	f.tracker = clients.StartOpentracker(t)
	f.torrent = filepath.Join(t.TempDir(), kind+".torrent")
	clients.MakeTorrent(t, f.path, f.torrent, clients.TorrentOpts{Trackers: []string{f.tracker.AnnounceURL}, PieceLength: piece})
	info, err := clients.ReadTorrent(f.torrent)
	if err != nil {
		t.Fatal(err)
	}
	f.info = info
	f.tracker.Allow(t, info.InfoHash)
	return f
}

func (f *fixture) waitSeeders(t *testing.T, n int) {
	t.Helper()
	clients.WaitSeeders(t, f.tracker.AnnounceURL, f.info.InfoHash, n, announceTime)
}

func (f *fixture) waitLeechers(t *testing.T, n int) {
	t.Helper()
	clients.WaitLeechers(t, f.tracker.AnnounceURL, f.info.InfoHash, n, announceTime)
}

// finish waits for leecher l, stops it and compares out/<name> with the
// original content byte for byte.
func (f *fixture) finish(t *testing.T, l *clients.Peer, out string, opts ...clients.CompareOption) {
	t.Helper()
	start := time.Now()
	if err := l.WaitDoneOrStall(out, transferTime, stallTime); err != nil {
		t.Fatalf("%s leecher: %v", l.Kind, err)
	}
	l.Stop()
	clients.RequireSameTree(t, f.path, filepath.Join(out, f.info.Name), opts...)
	t.Logf("%s leecher complete and identical (%d bytes, %.1fs after start)", l.Kind, f.info.TotalSize, time.Since(start).Seconds())
}
