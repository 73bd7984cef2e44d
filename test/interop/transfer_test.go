package interop

import (
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/test/clients"
)

// shoal downloads from a transmission-daemon seeder.
func TestShoalGetFromTransmission(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clients.Require(t, clients.TransmissionDaemon)
			f := newFixture(t, kind)
			clients.StartTransmissionSeeder(t, f.torrent, f.parent)
			f.waitSeeders(t, 1)
			out := filepath.Join(t.TempDir(), "out")
			f.finish(t, clients.StartShoalLeecher(t, f.torrent, out), out)
		})
	}
}

// shoal downloads from a libtorrent seeder.
func TestShoalGetFromLibtorrent(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clients.Require(t, clients.Libtorrent)
			f := newFixture(t, kind)
			clients.StartLibtorrentSeeder(t, f.torrent, f.parent)
			f.waitSeeders(t, 1)
			out := filepath.Join(t.TempDir(), "out")
			f.finish(t, clients.StartShoalLeecher(t, f.torrent, out), out)
		})
	}
}

// aria2c downloads from a shoal seeder.
func TestAria2GetFromShoal(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clients.Require(t, clients.Aria2)
			f := newFixture(t, kind)
			clients.StartShoalSeeder(t, f.torrent, f.parent)
			f.waitSeeders(t, 1) // shoal must announce left=0
			out := filepath.Join(t.TempDir(), "out")
			f.finish(t, clients.StartAria2Leecher(t, f.torrent, out), out)
		})
	}
}

// libtorrent downloads from a shoal seeder.
func TestLibtorrentGetFromShoal(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clients.Require(t, clients.Libtorrent)
			f := newFixture(t, kind)
			clients.StartShoalSeeder(t, f.torrent, f.parent)
			f.waitSeeders(t, 1)
			out := filepath.Join(t.TempDir(), "out")
			f.finish(t, clients.StartLibtorrentLeecher(t, f.torrent, out), out)
		})
	}
}
