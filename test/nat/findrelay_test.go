package nat

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/relay"
)

// TestSeederFindsRelayAtTracker: nobody tells the NATed shoal seeder about
// a relay. The relay lists itself in the relay directory (relay.DirectoryHash)
// at opentracker; the seeder looks the directory up at its torrent's
// tracker, finds the relay, registers, and libtorrent on the public segment
// downloads from it through the relay.
func TestSeederFindsRelayAtTracker(t *testing.T) {
	l := newLab(t)
	dir, seedDir, torrent, data := relaySwarm(t)
	// the Debian opentracker serves whitelisted hashes only: add the directory's
	wl := filepath.Join(dir, "whitelist.txt")
	b, err := os.ReadFile(wl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wl, append(b, fmt.Sprintf("%x\n", relay.DirectoryHash[:])...), 0o644); err != nil {
		t.Fatal(err)
	}
	l.startOpentracker(dir)

	relayLog := startRelay(t, l, "SHOAL_NAT_DIRECTORY=1")
	waitLog(t, relayLog, "listed in the relay directory", 30*time.Second)
	// the seeder names no relay: it is reachable only through one it found
	seedLog := startNATedSeeder(t, l, torrent, seedDir, relayLog, "SHOAL_NAT_FIND_RELAYS=1")
	waitLog(t, seedLog, "found relay "+relayMain, time.Second)

	ltDownloadViaRelay(t, l, dir, torrent, data)
}
