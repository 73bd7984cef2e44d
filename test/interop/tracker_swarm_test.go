package interop

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// trackerInterval is the announce interval the test trackers tell
// clients: short, so that a peer that starts later is learned by the
// others at their next announce.
const trackerInterval = "10s"

// shoalTracker is one running `shoal tracker` process serving HTTP and UDP
// on one 127.0.0.1 port. Static after start.
type shoalTracker struct {
	Port int
	Proc *clients.Proc
}

// startShoalTracker runs `shoal tracker` on one free 127.0.0.1 port (HTTP
// and UDP), with a short interval and no rate limit, plus extra flags.
func startShoalTracker(t *testing.T, extra ...string) *shoalTracker {
	t.Helper()
	port := clients.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := append([]string{clients.ShoalBinary(t), "tracker", "--http", addr, "--udp", addr,
		"--interval", trackerInterval, "--rate-limit", "0"}, extra...)
	p := clients.StartProc(t, "shoal-tracker", "", nil, argv...)
	if err := clients.WaitListening(addr, 20*time.Second); err != nil {
		t.Fatalf("shoal tracker did not start: %v", err)
	}
	return &shoalTracker{Port: port, Proc: p}
}

// HTTP is the tracker's HTTP announce URL.
func (st *shoalTracker) HTTP() string { return fmt.Sprintf("http://127.0.0.1:%d/announce", st.Port) }

// UDP is the tracker's BEP 15 announce URL.
func (st *shoalTracker) UDP() string { return fmt.Sprintf("udp://127.0.0.1:%d", st.Port) }

// Announce returns the announce URL for proto ("http" or "udp").
func (st *shoalTracker) Announce(proto string) string {
	if proto == "udp" {
		return st.UDP()
	}
	return st.HTTP()
}

var metricLine = regexp.MustCompile(`(?m)^(shoal_tracker_[a-z_]+(?:\{[^}]*\})?) (\d+)$`)

// Metrics reads the tracker's /metrics page into name{labels} → value.
func (st *shoalTracker) Metrics(t *testing.T) map[string]int64 {
	t.Helper()
	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", st.Port))
	m := make(map[string]int64)
	for _, g := range metricLine.FindAllStringSubmatch(body, -1) {
		m[g[1]], _ = strconv.ParseInt(g[2], 10, 64)
	}
	return m
}

// requireAnnouncesOver checks that the clients really announced over proto
// and never over the other frontend.
func requireAnnouncesOver(t *testing.T, st *shoalTracker, proto string, atLeast int64) {
	t.Helper()
	m := st.Metrics(t)
	other := map[string]string{"http": "udp", "udp": "http"}[proto]
	got := m[fmt.Sprintf("shoal_tracker_announces_total{proto=%q}", proto)]
	wrong := m[fmt.Sprintf("shoal_tracker_announces_total{proto=%q}", other)]
	t.Logf("tracker: %d announces over %s, %d over %s", got, proto, wrong, other)
	if got < atLeast || wrong != 0 {
		t.Errorf("want >= %d announces over %s and none over %s; metrics: %v", atLeast, proto, other, m)
	}
}

// aria2IP is the loopback address the aria2c leecher of TestTrackerSwarm
// binds to. Transmission 3.00 keys its peers by IP address alone (one
// "atom" per address: peer-mgr.c compareAtomsByAddress), so it keeps one
// connection per IP and refuses a second one from the same IP ("we already
// have this peer"); once one peer at that IP completes, it marks the atom a
// seed and, with PEX off, drops every later connection from that IP at once
// ("we're both seeds"). Two leechers on 127.0.0.1 therefore cannot both be
// served by a transmission seeder. All of 127.0.0.0/8 is loopback on Linux,
// so aria2c on 127.0.0.2 is a distinct peer and traffic stays on lo.
const aria2IP = "127.0.0.2"

// startAria2LeecherAt is clients.StartAria2Leecher with every aria2c
// socket bound to ip. With udp set, aria2c's DHT is switched on, because
// aria2c sends UDP tracker requests only through its DHT socket ("It also
// enables UDP tracker support", aria2c --help); the DHT socket is bound to
// ip and starts with no nodes (no entry point, a fresh dht.dat path), so it
// contacts nobody but the tracker and the swarm's peers.
func startAria2LeecherAt(t *testing.T, ip, torrent, out string, udp bool) *clients.Peer {
	t.Helper()
	clients.Require(t, clients.Aria2)
	port, dhtPort := clients.FreePort(t), clients.FreePort(t)
	dir := t.TempDir()
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"aria2c", "--no-conf=true", "--interface=" + ip, "--disable-ipv6=true",
		"--enable-dht=" + strconv.FormatBool(udp), "--enable-dht6=false",
		"--dht-listen-addr=" + ip, "--dht-listen-port=" + strconv.Itoa(dhtPort),
		"--dht-file-path=" + filepath.Join(dir, "dht.dat"),
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--bt-save-metadata=false",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
		"--auto-file-renaming=false", "--allow-overwrite=true", "--bt-max-peers=55",
		"--listen-port=" + strconv.Itoa(port),
		"--log=" + filepath.Join(dir, "aria2.log"), "--log-level=info",
		"-d", out, "--seed-time=0", "--bt-stop-timeout=600", "-T", torrent}
	p := &clients.Peer{
		Kind: "aria2",
		Port: port,
		Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)),
		Dir:  dir,
		Proc: clients.StartProc(t, "aria2-get", "", nil, args...),
	}
	p.AddLog(filepath.Join(dir, "aria2.log"))
	return p
}

// TestTrackerSwarm: transmission-daemon seeds, aria2c and libtorrent leech,
// coordinated only by `shoal tracker`, once with an HTTP and once with a
// UDP announce URL; both downloads must be byte-identical.
//
// Transmission never dials loopback peers, so both leechers dial it (they
// learn it from the tracker); aria2c and libtorrent learn each other from
// the tracker too. See aria2IP for why aria2c is on 127.0.0.2.
func TestTrackerSwarm(t *testing.T) {
	clients.Require(t, clients.TransmissionDaemon, clients.Aria2, clients.Libtorrent, clients.Mktorrent)
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			tr := startShoalTracker(t)
			dir := t.TempDir()
			src := filepath.Join(dir, "seed")
			path := clients.MakeSingle(t, src, "payload-"+proto+".bin", 5<<20+12345)
			torrent := filepath.Join(dir, "t.torrent")
			clients.MakeTorrent(t, path, torrent, clients.TorrentOpts{Trackers: []string{tr.Announce(proto)}, PieceLength: 64 << 10})
			info, err := clients.ReadTorrent(torrent)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			clients.StartTransmissionSeeder(t, torrent, src)
			// Scrape over HTTP works for both: one process serves both frontends.
			clients.WaitSeeders(t, tr.HTTP(), info.InfoHash, 1, 60*time.Second)
			outA, outL := filepath.Join(dir, "aria2"), filepath.Join(dir, "lt")
			a := startAria2LeecherAt(t, aria2IP, torrent, outA, proto == "udp")
			l := clients.StartLibtorrentLeecher(t, torrent, outL)
			if err := a.WaitDoneOrStall(outA, 90*time.Second, 45*time.Second); err != nil {
				t.Fatalf("aria2c: %v", err)
			}
			if err := l.WaitDoneOrStall(outL, 90*time.Second, 45*time.Second); err != nil {
				t.Fatalf("libtorrent: %v", err)
			}
			t.Logf("%s: both leechers done %.1fs after the seeder started", proto, time.Since(start).Seconds())
			clients.RequireSameTree(t, path, filepath.Join(outA, info.Name))
			clients.RequireSameTree(t, path, filepath.Join(outL, info.Name))
			requireAnnouncesOver(t, tr, proto, 3)
		})
	}
}

// TestTrackerHostileProcess sends hostile HTTP and UDP requests to a
// running `shoal tracker` and checks each is refused or dropped and that
// the tracker keeps serving.
func TestTrackerHostileProcess(t *testing.T) {
	tr := startShoalTracker(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", tr.Port)
	ih := strings.Repeat("%41", 20)
	pid := "&peer_id=" + strings.Repeat("x", 20)
	for _, q := range []string{
		"info_hash=short" + pid + "&port=1&left=0",
		"info_hash=" + ih + pid + "&port=0&left=0",
		"info_hash=" + ih + pid + "&port=1&left=-1",
		"info_hash=" + ih + pid + "&port=1&left=0&uploaded=-9",
		"info_hash=%zz",
	} {
		if body := httpGet(t, base+"/announce?"+q); !strings.Contains(body, "failure reason") {
			t.Errorf("announce?%s answered %q", q, body)
		}
	}
	if body := httpGet(t, base+"/announce?info_hash="+ih+pid+"&port=1&left=0&numwant=99999999999"); !strings.Contains(body, "8:interval") {
		t.Errorf("huge numwant refused: %q", body)
	}
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", tr.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	forged := make([]byte, 98)
	binary.BigEndian.PutUint64(forged, 0xdeadbeefcafef00d)
	binary.BigEndian.PutUint32(forged[8:], 1)
	for _, p := range [][]byte{[]byte("garbage"), make([]byte, 16), forged, make([]byte, 1400)} {
		c.Write(p)
	}
	// Still serving over UDP: connect answers with our transaction id.
	id, err := udpConnect(c, 77)
	if err != nil {
		t.Fatalf("connect after hostile packets: %v", err)
	}
	if id == 0 {
		t.Fatalf("connect after hostile packets: connection id 0")
	}
	// Two UDP workers may still be on the forged packet: poll, bounded.
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if body = httpGet(t, base+"/metrics"); strings.Contains(body, `shoal_tracker_errors_total{kind="bad_connection_id"} 1`) {
			return
		}
	}
	t.Errorf("metrics after hostile packets:\n%s", body)
}

// udpConnect sends a BEP 15 connect with transaction id tid on c and
// returns the connection id.
func udpConnect(c net.Conn, tid uint32) (uint64, error) {
	pkt := binary.BigEndian.AppendUint64(nil, 0x41727101980)
	pkt = binary.BigEndian.AppendUint32(pkt, 0)
	pkt = binary.BigEndian.AppendUint32(pkt, tid)
	resp, err := udpRoundTrip(c, pkt)
	if err != nil {
		return 0, err
	}
	if len(resp) != 16 || binary.BigEndian.Uint32(resp) != 0 || binary.BigEndian.Uint32(resp[4:]) != tid {
		return 0, fmt.Errorf("bad connect reply %x", resp)
	}
	return binary.BigEndian.Uint64(resp[8:]), nil
}

// udpRoundTrip sends pkt and reads one reply, waiting at most 10 seconds.
func udpRoundTrip(c net.Conn, pkt []byte) ([]byte, error) {
	if _, err := c.Write(pkt); err != nil {
		return nil, fmt.Errorf("udp send: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("udp read: %w", err)
	}
	return buf[:n], nil
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b)
}
