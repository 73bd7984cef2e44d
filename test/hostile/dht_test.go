package hostile

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// krpcQuery builds a KRPC query with transaction id tid and arguments a
// (a pre-encoded dictionary).
func krpcQuery(tid, method string, a []byte) []byte {
	return dict("a", a, "q", method, "t", tid, "y", "q")
}

var testID = strings.Repeat("\x11", 20)

// dhtPing sends a valid ping from a fresh socket and reports whether the
// node answered it within d (retrying every 500 ms, since the node
// rate-limits a source IP that just flooded it).
func dhtPing(addr string, d time.Duration) bool {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return false
	}
	defer pc.Close()
	to, _ := net.ResolveUDPAddr("udp4", addr)
	end := time.Now().Add(d)
	buf := make([]byte, 4096)
	for time.Now().Before(end) {
		_, _ = pc.WriteTo(krpcQuery("pp", "ping", dict("id", testID)), to)
		_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			if bytes.Contains(buf[:n], []byte("1:t2:pp")) && bytes.Contains(buf[:n], []byte("1:y1:r")) {
				return true
			}
		}
	}
	return false
}

// hostileDHT returns the hostile KRPC packets.
func hostileDHT() []struct {
	Name string
	Pkt  []byte
} {
	id := dict("id", testID)
	ih := strings.Repeat("\x22", 20)
	nodes := strings.Repeat("\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x7f\x00\x00\x01\x1a\x0a", 2400) // 62 400 bytes
	out := []struct {
		Name string
		Pkt  []byte
	}{
		{"empty packet", nil},
		{"random bytes", detData(1200, 42)},
		{"64 KB random", detData(65000, 43)},
		{"bencode integer", []byte("i42e")},
		{"list instead of dict", []byte("l4:pinge")},
		{"truncated dict", []byte("d1:ad2:id20:")},
		{"deeply nested", []byte(strings.Repeat("l", 20000) + strings.Repeat("e", 20000))},
		{"trailing garbage", append(krpcQuery("a1", "ping", id), "XXXX"...)},
		{"query without id", krpcQuery("a2", "ping", dict())},
		{"id of 19 bytes", krpcQuery("a3", "ping", dict("id", testID[:19]))},
		{"id as integer", krpcQuery("a4", "ping", dict("id", 5))},
		{"no transaction id", dict("a", id, "q", "ping", "y", "q")},
		{"1 KB transaction id", krpcQuery(strings.Repeat("t", 1024), "ping", id)},
		{"unknown method", krpcQuery("a5", "steal_everything", id)},
		{"y is neither q, r nor e", dict("a", id, "q", "ping", "t", "a6", "y", "z")},
		{"get_peers info_hash of 19 bytes", krpcQuery("a7", "get_peers", dict("id", testID, "info_hash", ih[:19]))},
		{"find_node target missing", krpcQuery("a8", "find_node", id)},
		{"find_node target 1 KB", krpcQuery("a9", "find_node", dict("id", testID, "target", strings.Repeat("x", 1024)))},
		{"announce_peer bogus token", krpcQuery("b1", "announce_peer", dict("id", testID, "info_hash", ih, "port", 6881, "token", "bogus"))},
		{"announce_peer empty token", krpcQuery("b2", "announce_peer", dict("id", testID, "info_hash", ih, "port", 6881, "token", ""))},
		{"announce_peer 64 KB token", krpcQuery("b3", "announce_peer", dict("id", testID, "info_hash", ih, "port", 6881, "token", strings.Repeat("k", 60000)))},
		{"announce_peer port 0", krpcQuery("b4", "announce_peer", dict("id", testID, "info_hash", ih, "port", 0, "token", "x"))},
		{"announce_peer port 70000", krpcQuery("b5", "announce_peer", dict("id", testID, "info_hash", ih, "port", 70000, "token", "x"))},
		{"announce_peer port -1", krpcQuery("b6", "announce_peer", dict("id", testID, "info_hash", ih, "port", -1, "token", "x"))},
		{"unsolicited response, huge nodes", dict("r", dict("id", testID, "nodes", nodes), "t", "zz", "y", "r")},
		{"unsolicited response, 10k values", dict("r", dict("id", testID, "values", []any{strings.Repeat("\x7f\x00\x00\x01\x1a\x0a", 10)}), "t", "zy", "y", "r")},
		{"nodes of odd length", dict("r", dict("id", testID, "nodes", nodes[:27]), "t", "zx", "y", "r")},
		{"error with no list", dict("e", "oops", "t", "zw", "y", "e")},
		{"error list of 10k items", dict("e", []byte("l"+strings.Repeat("i1e", 10000)+"e"), "t", "zv", "y", "e")},
		{"get_peers with 2000-byte want", krpcQuery("c1", "get_peers", dict("id", testID, "info_hash", ih, "want", []string{strings.Repeat("n4", 1000)}))},
		{"sample_infohashes bad target", krpcQuery("c2", "sample_infohashes", dict("id", testID, "target", 5))},
		{"put with 10 KB value", krpcQuery("c3", "put", dict("id", testID, "token", "x", "v", strings.Repeat("v", 10000)))},
	}
	return out
}

// TestHostileDHT sends hostile KRPC packets and a flood at a `shoal dht`
// node; after each packet, and after the flood, the node must still answer
// a legitimate ping, and its memory stays bounded.
func TestHostileDHT(t *testing.T) {
	t.Parallel()
	port := clients.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// the bootstrap is a closed loopback port: nothing leaves the machine
	node := clients.StartProc(t, "shoal-dht", "", nil, clients.ShoalBinary(t), "dht", "--listen", addr,
		"--allow-loopback", "--bootstrap", fmt.Sprintf("127.0.0.1:%d", clients.FreePort(t)))
	if !dhtPing(addr, 15*time.Second) {
		t.Fatalf("dht node never answered a ping\n%s", node.Log())
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to, _ := net.ResolveUDPAddr("udp4", addr)
	cases := hostileDHT()
	answered := 0
	for _, c := range cases {
		_, _ = pc.WriteTo(c.Pkt, to)
		if !dhtPing(addr, 5*time.Second) {
			t.Errorf("after %q the node stopped answering pings", c.Name)
			continue
		}
		answered++
	}
	// a bogus token must be refused with an error, not stored
	tokenErr := false
	_, _ = pc.WriteTo(krpcQuery("tk", "announce_peer", dict("id", testID, "info_hash", strings.Repeat("\x22", 20), "port", 6881, "token", "bogus")), to)
	_ = pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		if bytes.Contains(buf[:n], []byte("1:t2:tk")) {
			tokenErr = bytes.Contains(buf[:n], []byte("1:y1:e"))
			break
		}
	}
	if !tokenErr {
		t.Errorf("announce_peer with a bogus token was not answered with an error")
	}

	// flood: 30 000 queries (pings, get_peers, find_node) from 8 sockets
	before := rssKiB(node.PID())
	peak := before
	for s := 0; s < 8; s++ {
		fc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3750; i++ {
			tid := fmt.Sprintf("%04x", i)
			var p []byte
			switch i % 3 {
			case 0:
				p = krpcQuery(tid, "ping", dict("id", testID))
			case 1:
				p = krpcQuery(tid, "get_peers", dict("id", testID, "info_hash", string(detData(20, uint64(i)))))
			default:
				p = krpcQuery(tid, "find_node", dict("id", string(detData(20, uint64(i+7))), "target", string(detData(20, uint64(i)))))
			}
			_, _ = fc.WriteTo(p, to)
		}
		fc.Close()
		peak = max(peak, rssKiB(node.PID()))
	}
	time.Sleep(500 * time.Millisecond)
	peak = max(peak, rssKiB(node.PID()))
	if !dhtPing(addr, 10*time.Second) {
		t.Errorf("after the flood the node stopped answering pings")
	}
	if peak > rssCapKiB {
		t.Errorf("dht node RSS peaked at %d KiB, cap %d", peak, rssCapKiB)
	}
	if node.Exited() {
		t.Fatalf("dht node died: %v\n%s", node.Wait(0), node.Log())
	}
	t.Logf("dht node RSS %d KiB before the flood, peak %d KiB", before, peak)
	record(t, "hostile DHT packets", len(cases)+1,
		fmt.Sprintf("%d/%d followed by a good ping answer; bogus token refused=%v", answered, len(cases), tokenErr))
	record(t, "DHT query flood", 30000,
		fmt.Sprintf("rate-limited; ping answered after; RSS %d→peak %d KiB", before, peak))
}
