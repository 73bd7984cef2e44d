package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/test/clients"
)

// TestIndexFromLibtorrentDHT: `shoal index` builds its search index from
// libtorrent's BEP 51 answers. Two shoal DHT nodes and two libtorrent seeders
// form one DHT on 127.0.0.1; each seeder announces its trackerless torrent,
// so each libtorrent node stores the other's info-hash. The test first asks
// both libtorrent nodes itself (sample_infohashes) until each names the
// other's torrent, then stops the shoal nodes, so that the only DHT nodes
// left are libtorrent's, and runs `shoal index` bootstrapped from one
// libtorrent node only: every sample it gets comes from libtorrent. Both
// torrents must be indexed (metadata over BEP 9 from the libtorrent seeders,
// found with get_peers at the libtorrent nodes) and found by `shoal search
// --index` with a substring from the middle of their names.
func TestIndexFromLibtorrentDHT(t *testing.T) {
	clients.Require(t, clients.Libtorrent)
	bin := clients.ShoalBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()

	p1, p2 := clients.FreePort(t), clients.FreePort(t)
	n1 := fmt.Sprintf("127.0.0.1:%d", p1)
	n2 := fmt.Sprintf("127.0.0.1:%d", p2)
	d1 := clients.StartProc(t, "shoal-dht1", "", nil, bin, "dht", "--listen", n1, "--allow-loopback", "--bootstrap", n2)
	d2 := clients.StartProc(t, "shoal-dht2", "", nil, bin, "dht", "--listen", n2, "--allow-loopback", "--bootstrap", n1)
	nodes := n1 + "," + n2

	type seeded struct {
		name, mid, infoHash string
		peer                *clients.Peer
	}
	torrents := []*seeded{
		{name: "Quixotic.Marmalade.Expedition.2026.mkv", mid: "marmalade.exped"},
		{name: "Zephyrine_Lantern_Archive_Vol7.iso", mid: "lantern_archive"},
	}
	dir := t.TempDir()
	for i, s := range torrents {
		parent := filepath.Join(dir, fmt.Sprintf("data%d", i))
		src := clients.MakeSingle(t, parent, s.name, 300<<10+int64(i)*4099)
		torrent := filepath.Join(dir, fmt.Sprintf("t%d.torrent", i))
		if _, stderr, err := clients.RunShoal(t, 30*time.Second, "create", "--no-date", "--piece-length", "65536", "-o", torrent, src); err != nil {
			t.Fatalf("shoal create: %v\n%s", err, stderr)
		}
		info, err := clients.ReadTorrent(torrent)
		if err != nil {
			t.Fatal(err)
		}
		if info.Announce != "" {
			t.Fatalf("%s: want a trackerless torrent, announce %q", torrent, info.Announce)
		}
		s.infoHash = info.InfoHash
		s.peer = clients.StartLibtorrentSeeder(t, torrent, parent, "--dht", nodes,
			// Every node here has IP 127.0.0.1: libtorrent's per-IP DHT
			// flood guard (5 queries/s, then 300 s of silence) would block
			// them all, shoal nodes, the other seeder and the indexer alike.
			"--setting", "dht_block_ratelimit=100000",
			"--setting", "dht_upload_rate_limit=1000000")
	}

	// Ask each libtorrent node for its sample ourselves until it names the
	// other seeder's torrent: libtorrent stores announces from others, never
	// its own torrents, so this is the other seeder's announce_peer.
	probe, err := dht.New(dht.Config{Listen: "127.0.0.1:0", Bootstrap: []string{}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); probe.Start(pctx) }()
	for i, s := range torrents {
		other := torrents[1-i]
		addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.peer.Port))
		var last string
		found := false
		for deadline := time.Now().Add(25 * time.Second); !found && time.Now().Before(deadline); {
			var target [20]byte
			rand.Read(target[:])
			qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
			hs, _, interval, num, err := probe.SampleInfohashes(qctx, addr, target)
			qcancel()
			last = fmt.Sprintf("err=%v num=%d interval=%v samples=%d", err, num, interval, len(hs))
			for _, h := range hs {
				if hex.EncodeToString(h[:]) == other.infoHash {
					found = true
				}
			}
			if !found {
				time.Sleep(500 * time.Millisecond)
			}
		}
		if !found {
			t.Fatalf("libtorrent node %s never sampled %s (%s); last answer: %s", addr, other.infoHash, other.name, last)
		}
		t.Logf("libtorrent node %s answers sample_infohashes with %s (%s)", addr, other.infoHash, other.name)
	}
	pcancel()
	probe.Close()
	<-probeDone

	// Only libtorrent's DHT nodes are left.
	d1.Stop()
	d2.Stop()

	db := filepath.Join(t.TempDir(), "index.db")
	boot := fmt.Sprintf("127.0.0.1:%d", torrents[0].peer.Port)
	stdout, stderr, err := clients.RunShoal(t, 30*time.Second, "index", "--dht-bootstrap", boot,
		"--dht-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--db", db,
		"--max", "2", "--rate", "20", "--parallel", "2")
	if err != nil {
		t.Fatalf("shoal index: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "2 indexed") {
		t.Fatalf("shoal index did not index both torrents:\n%s\n%s", stdout, stderr)
	}
	t.Logf("bootstrapped from libtorrent node %s only: %s", boot, strings.TrimSpace(stdout))

	for _, s := range torrents {
		out, serr, err := clients.RunShoal(t, 20*time.Second, "search", "--index", db, "--json", s.mid)
		if err != nil {
			t.Fatalf("shoal search %q: %v\n%s", s.mid, err, serr)
		}
		var res struct {
			Results []struct {
				InfoHash string `json:"info_hash"`
				Name     string `json:"name"`
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("shoal search --json %q: %v\n%s", s.mid, err, out)
		}
		ok := false
		for _, r := range res.Results {
			ok = ok || (r.InfoHash == s.infoHash && r.Name == s.name)
		}
		if !ok {
			t.Fatalf("shoal search %q: %s (%s) not found in %s", s.mid, s.name, s.infoHash, out)
		}
		t.Logf("shoal search %q: found %s", s.mid, s.name)
	}
}
