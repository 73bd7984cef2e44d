package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
	"github.com/shoal-p2p/shoal/test/clients"
)

// startRedisServer runs a throwaway redis-server on a free 127.0.0.1 port
// (no persistence) and returns its URL for `shoal tracker --store`.
func startRedisServer(t *testing.T) string {
	t.Helper()
	clients.Require(t, clients.Redis)
	port := clients.FreePort(t)
	clients.StartProc(t, "redis-server", "", nil, "redis-server", "--port", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := clients.WaitListening(addr, 20*time.Second); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	return "redis://" + addr + "/0"
}

// udpAnnounce sends one BEP 15 announce with connection id id on c and
// returns the peers of the answer.
func udpAnnounce(c net.Conn, id uint64, ih [20]byte, port uint16, left int64) ([]netip.AddrPort, error) {
	const tid = 4242
	pkt := binary.BigEndian.AppendUint64(nil, id)
	pkt = binary.BigEndian.AppendUint32(pkt, 1) // announce
	pkt = binary.BigEndian.AppendUint32(pkt, tid)
	pkt = append(pkt, ih[:]...)
	pkt = append(pkt, "-XX0001-udp-peer-id0"...)
	pkt = binary.BigEndian.AppendUint64(pkt, 0)            // downloaded
	pkt = binary.BigEndian.AppendUint64(pkt, uint64(left)) // left
	pkt = binary.BigEndian.AppendUint64(pkt, 0)            // uploaded
	pkt = binary.BigEndian.AppendUint32(pkt, 2)            // started
	pkt = binary.BigEndian.AppendUint32(pkt, 0)            // ip
	pkt = binary.BigEndian.AppendUint32(pkt, 7)            // key
	pkt = binary.BigEndian.AppendUint32(pkt, 0xffffffff)   // numwant -1
	pkt = binary.BigEndian.AppendUint16(pkt, port)
	resp, err := udpRoundTrip(c, pkt)
	if err != nil {
		return nil, err
	}
	if len(resp) < 20 || binary.BigEndian.Uint32(resp) != 1 || binary.BigEndian.Uint32(resp[4:]) != tid || (len(resp)-20)%6 != 0 {
		return nil, fmt.Errorf("bad announce reply %q", resp)
	}
	var peers []netip.AddrPort
	for b := resp[20:]; len(b) >= 6; b = b[6:] {
		peers = append(peers, netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:6])))
	}
	return peers, nil
}

// TestTrackerTwoInstancesRedis runs two `shoal tracker` processes on one
// redis-server: a peer that announced to one is returned by the other
// (over HTTP and over UDP, where a connection id from instance A is
// accepted by instance B), and a shoal seeder announcing to A and a shoal
// leecher announcing to B complete a transfer.
func TestTrackerTwoInstancesRedis(t *testing.T) {
	store := startRedisServer(t)
	a := startShoalTracker(t, "--store", store)
	b := startShoalTracker(t, "--store", store)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("announce", func(t *testing.T) {
		var cl tracker.Client
		ih := [20]byte{'r', 'e', 'd', 'i', 's'}
		seeder := netip.MustParseAddrPort("127.0.0.1:4001")
		req := tracker.AnnounceRequest{InfoHash: ih, PeerID: [20]byte{'s'}, Port: seeder.Port(), Left: 0, Event: tracker.Started, NumWant: -1}
		if _, err := cl.Announce(ctx, a.HTTP(), req); err != nil {
			t.Fatalf("seeder announce to A: %v", err)
		}
		req = tracker.AnnounceRequest{InfoHash: ih, PeerID: [20]byte{'l'}, Port: 4002, Left: 100, Event: tracker.Started, NumWant: -1}
		resp, err := cl.Announce(ctx, b.HTTP(), req)
		if err != nil {
			t.Fatalf("leecher announce to B: %v", err)
		}
		if !slices.Contains(resp.Peers, seeder) || resp.Seeders != 1 || resp.Leechers != 1 {
			t.Fatalf("B over HTTP: peers %v, %d seeders, %d leechers; want %v among them, 1 and 1", resp.Peers, resp.Seeders, resp.Leechers, seeder)
		}

		// UDP: connect to A, announce to B with A's connection id.
		ca, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", a.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		id, err := udpConnect(ca, 99)
		if err != nil {
			t.Fatalf("UDP connect to A: %v", err)
		}
		cb, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", b.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		peers, err := udpAnnounce(cb, id, ih, 4003, 100)
		if err != nil {
			t.Fatalf("UDP announce to B with A's connection id: %v", err)
		}
		if !slices.Contains(peers, seeder) {
			t.Fatalf("B over UDP returned %v; want %v (announced to A)", peers, seeder)
		}
		// And the other way round: A lists the leecher that used UDP on B.
		st, err := clients.Scrape(a.HTTP(), fmt.Sprintf("%x", ih))
		if err != nil || st.Complete != 1 || st.Incomplete != 2 {
			t.Fatalf("scrape of A: %+v, %v; want 1 seeder, 2 leechers", st, err)
		}
	})

	t.Run("swarm", func(t *testing.T) {
		clients.Require(t, clients.Mktorrent)
		dir := t.TempDir()
		src := filepath.Join(dir, "seed")
		path := clients.MakeSingle(t, src, "payload-redis.bin", 3<<20+777)
		// Two .torrent files of the same content: the seeder's announces to
		// A over HTTP, the leecher's to B over UDP. The announce URL is
		// outside the info dictionary, so the info-hash is the same.
		ta, tb := filepath.Join(dir, "a.torrent"), filepath.Join(dir, "b.torrent")
		clients.MakeTorrent(t, path, ta, clients.TorrentOpts{Trackers: []string{a.HTTP()}, PieceLength: 64 << 10})
		clients.MakeTorrent(t, path, tb, clients.TorrentOpts{Trackers: []string{b.UDP()}, PieceLength: 64 << 10})
		ia, err := clients.ReadTorrent(ta)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := clients.ReadTorrent(tb)
		if err != nil {
			t.Fatal(err)
		}
		if ia.InfoHash != ib.InfoHash {
			t.Fatalf("info-hashes differ: %s vs %s", ia.InfoHash, ib.InfoHash)
		}
		httpA := `shoal_tracker_announces_total{proto="http"}`
		udpB := `shoal_tracker_announces_total{proto="udp"}`
		beforeA, beforeB := a.Metrics(t)[httpA], b.Metrics(t)[udpB]
		clients.StartShoalSeeder(t, ta, src)
		// B's scrape sees the seeder that announced to A.
		clients.WaitSeeders(t, b.HTTP(), ia.InfoHash, 1, 60*time.Second)
		out := filepath.Join(dir, "out")
		l := clients.StartShoalLeecher(t, tb, out)
		if err := l.WaitDoneOrStall(out, 90*time.Second, 45*time.Second); err != nil {
			t.Fatalf("shoal get via B: %v", err)
		}
		clients.RequireSameTree(t, path, filepath.Join(out, ia.Name))
		dA, dB := a.Metrics(t)[httpA]-beforeA, b.Metrics(t)[udpB]-beforeB
		t.Logf("announces during the transfer: %d over HTTP to A, %d over UDP to B", dA, dB)
		if dA < 1 || dB < 1 {
			t.Errorf("want the seeder's announces over HTTP on A and the leecher's over UDP on B")
		}
	})
}
