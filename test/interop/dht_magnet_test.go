package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// TestDHTMagnet: shoal DHT nodes and libtorrent sessions on 127.0.0.1 form one
// DHT. libtorrent downloads from a shoal seeder given only a magnet link, and
// shoal downloads from a libtorrent seeder given only a magnet link; nobody is
// told of a tracker or of the other's address.
func TestDHTMagnet(t *testing.T) {
	clients.Require(t, clients.Libtorrent)
	bin := clients.ShoalBinary(t)

	// two standalone shoal nodes that bootstrap from each other
	p1, p2 := clients.FreePort(t), clients.FreePort(t)
	n1 := fmt.Sprintf("127.0.0.1:%d", p1)
	n2 := fmt.Sprintf("127.0.0.1:%d", p2)
	clients.StartProc(t, "shoal-dht1", "", nil, bin, "dht", "--listen", n1, "--allow-loopback", "--bootstrap", n2)
	clients.StartProc(t, "shoal-dht2", "", nil, bin, "dht", "--listen", n2, "--allow-loopback", "--bootstrap", n1)
	nodes := n1 + "," + n2
	time.Sleep(500 * time.Millisecond)

	magnetOf := func(t *testing.T, torrent string) (string, string) {
		stdout, stderr, err := clients.RunShoal(t, time.Minute, "info", "--json", torrent)
		if err != nil {
			t.Fatalf("shoal info: %v\n%s", err, stderr)
		}
		i := strings.Index(stdout, `"info_hash": "`)
		if i < 0 {
			t.Fatalf("no info_hash in %s", stdout)
		}
		ih := stdout[i+len(`"info_hash": "`):][:40]
		return "magnet:?xt=urn:btih:" + ih, ih
	}
	makeTrackerless := func(t *testing.T, name string) (src, torrent string) {
		dir := t.TempDir()
		src = clients.MakeSingle(t, dir, name, 12<<20)
		torrent = filepath.Join(t.TempDir(), name+".torrent")
		if _, stderr, err := clients.RunShoal(t, time.Minute, "create", "--no-date", "--piece-length", "65536", "-o", torrent, src); err != nil {
			t.Fatalf("shoal create: %v\n%s", err, stderr)
		}
		return src, torrent
	}

	t.Run("libtorrent-from-shoal", func(t *testing.T) {
		src, torrent := makeTrackerless(t, "dht-from-shoal.bin")
		magnet, _ := magnetOf(t, torrent)
		seed := clients.StartShoalSeeder(t, torrent, filepath.Dir(src), "--no-dht=false", "--dht-bootstrap", nodes)
		if err := clients.WaitListening(seed.Addr.String(), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		lt := clients.StartLibtorrentLeecher(t, magnet, out, "--dht", nodes)
		if err := lt.WaitDone(2 * time.Minute); err != nil {
			t.Fatalf("libtorrent did not finish from the magnet: %v", err)
		}
		clients.RequireSameTree(t, src, filepath.Join(out, filepath.Base(src)))
	})

	t.Run("shoal-from-libtorrent", func(t *testing.T) {
		src, torrent := makeTrackerless(t, "dht-from-lt.bin")
		magnet, _ := magnetOf(t, torrent)
		clients.StartLibtorrentSeeder(t, torrent, filepath.Dir(src), "--dht", nodes)
		out := filepath.Join(t.TempDir(), "out")
		get := clients.StartShoalLeecher(t, magnet, out, "--no-dht=false", "--dht-bootstrap", nodes)
		if err := get.WaitDone(2 * time.Minute); err != nil {
			t.Fatalf("shoal did not finish from the magnet: %v", err)
		}
		clients.RequireSameTree(t, src, filepath.Join(out, filepath.Base(src)))
	})
}
