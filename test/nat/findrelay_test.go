package nat

import (
	"bytes"
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
	dir, seedDir, torrent, data := trNATSwarm(t)
	// the Debian opentracker serves whitelisted hashes only: add the directory's
	wl := filepath.Join(dir, "whitelist.txt")
	b, err := os.ReadFile(wl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wl, append(b, fmt.Sprintf("%x\n", relay.DirectoryHash[:])...), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listen.tcp_udp %s:6969\naccess.whitelist whitelist.txt\ntracker.rootdir %s\ntracker.user nobody\n", relayIP, dir)
	os.WriteFile(filepath.Join(dir, "opentracker.conf"), []byte(conf), 0o644)
	l.start("P", "opentracker", nil, "opentracker", "-f", filepath.Join(dir, "opentracker.conf"))

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, relayLog := l.start("P", "relay", []string{"SHOAL_NAT_HELPER=relay", "SHOAL_NAT_DIRECTORY=1"}, self)
	waitLog(t, relayLog, "relay listening", 10*time.Second)
	waitLog(t, relayLog, "listed in the relay directory", 30*time.Second)
	_, seedLog := l.start("A", "seeder", []string{"SHOAL_NAT_HELPER=seeder", "SHOAL_NAT_FIND_RELAYS=1",
		"SHOAL_NAT_TORRENT=" + torrent, "SHOAL_NAT_DATA=" + seedDir}, self)
	waitLog(t, seedLog, "found relay "+relayMain, 60*time.Second)
	waitLog(t, seedLog, "reachable through relay", 30*time.Second)
	waitLog(t, relayLog, "relay announced", 30*time.Second)

	out := filepath.Join(dir, "down")
	os.MkdirAll(out, 0o755)
	lt, ltLog := l.start("D", "libtorrent", nil, "/usr/bin/python3", "lt_get.py", "--ip", downIP, "--port", "6881", "--out", out, "--timeout", "120", torrent)
	done := make(chan error, 1)
	go func() { done <- lt.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("libtorrent did not complete: %v", err)
		}
	case <-time.After(150 * time.Second):
		t.Fatal("libtorrent still running after 150 s")
	}
	got, err := os.ReadFile(filepath.Join(out, "payload.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded content differs (%v)", err)
	}
	lb, _ := os.ReadFile(ltLog)
	if !bytes.Contains(lb, []byte("peer ('"+relayIP+"', 3000")) {
		t.Errorf("libtorrent never listed the relay %s as a peer", relayIP)
	}
}
