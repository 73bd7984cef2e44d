package interop

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// TestTrackerShoalClient: `shoal seed` and `shoal get` find each other only
// through `shoal tracker`, once with an HTTP and once with a UDP announce
// URL, and the download is byte-identical.
func TestTrackerShoalClient(t *testing.T) {
	clients.Require(t, clients.Mktorrent)
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			tr := startShoalTracker(t)
			dir := t.TempDir()
			src := filepath.Join(dir, "seed")
			path := clients.MakeSingle(t, src, "payload-shoal-"+proto+".bin", 4<<20+4321)
			torrent := filepath.Join(dir, "t.torrent")
			clients.MakeTorrent(t, path, torrent, clients.TorrentOpts{Trackers: []string{tr.Announce(proto)}, PieceLength: 64 << 10})
			info, err := clients.ReadTorrent(torrent)
			if err != nil {
				t.Fatal(err)
			}
			clients.StartShoalSeeder(t, torrent, src)
			clients.WaitSeeders(t, tr.HTTP(), info.InfoHash, 1, 60*time.Second)
			out := filepath.Join(dir, "out")
			l := clients.StartShoalLeecher(t, torrent, out)
			if err := l.WaitDoneOrStall(out, 90*time.Second, 45*time.Second); err != nil {
				t.Fatalf("shoal get: %v", err)
			}
			clients.RequireSameTree(t, path, filepath.Join(out, info.Name))
			requireAnnouncesOver(t, tr, proto, 2)
		})
	}
}
