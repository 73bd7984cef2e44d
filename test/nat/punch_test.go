package nat

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/relay"
)

// The punching lab: two NATed sites and a public relay + rendezvous.
//
//	P   198.18.100.10  relay :7000 (public ports 30000-30009), rendezvous :7001
//	RA  wan0 198.18.100.1, lan0 100.64.1.1    A 100.64.1.2 (sender, registered at the relay)
//	RB  wan0 198.18.100.2, lan0 100.64.2.1    B 100.64.2.2 (receiver, connects through the relay)
//
// B connects to A through the relay; both ask the rendezvous to punch; A
// sends punchTotal bytes in chunks, each on the direct connection once there
// is one and on the relayed one until then. B counts where the bytes came
// from and checks every chunk.
const (
	punchRendezvous = relayIP + ":7001"
	punchTotal      = 48 << 20
	punchChunk      = 256 << 10
	punchBIP        = "100.64.2.2"
)

var punchIH = [20]byte{'s', 'h', 'o', 'a', 'l', '-', 'p', 'u', 'n', 'c', 'h'}

func peerID(c byte) [20]byte {
	var id [20]byte
	copy(id[:], "-SH0001-punch-peer-")
	id[19] = c
	return id
}

func newPunchLab(t *testing.T, mode string) *lab {
	if os.Geteuid() != 0 {
		t.Skip("NAT lab needs root (network namespaces)")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("NAT lab needs %s", bin)
		}
	}
	l := &lab{t: t, prefix: fmt.Sprintf("swp%d%c-", os.Getpid(), mode[0]), names: []string{"inet", "P", "RA", "A", "RB", "B"}}
	t.Cleanup(l.cleanup)
	for _, n := range l.names {
		run(t, "ip", "netns", "add", l.ns(n))
		l.in(n, "ip", "link", "set", "lo", "up")
	}
	l.in("inet", "ip", "link", "add", "br0", "type", "bridge")
	l.in("inet", "ip", "link", "set", "br0", "up")
	for _, h := range []struct{ ns, dev, addr string }{{"P", "eth0", relayIP}, {"RA", "wan0", routerWAN}, {"RB", "wan0", "198.18.100.2"}} {
		port := "v" + h.ns
		run(t, "ip", "link", "add", port, "netns", l.ns("inet"), "type", "veth", "peer", "name", h.dev, "netns", l.ns(h.ns))
		l.in("inet", "ip", "link", "set", port, "master", "br0", "up")
		l.in(h.ns, "ip", "addr", "add", h.addr+"/24", "dev", h.dev)
		l.in(h.ns, "ip", "link", "set", h.dev, "up")
	}
	for _, s := range []struct{ r, h, net string }{{"RA", "A", "1"}, {"RB", "B", "2"}} {
		run(t, "ip", "link", "add", "lan0", "netns", l.ns(s.r), "type", "veth", "peer", "name", "eth0", "netns", l.ns(s.h))
		l.in(s.r, "ip", "addr", "add", "100.64."+s.net+".1/24", "dev", "lan0")
		l.in(s.r, "ip", "link", "set", "lan0", "up")
		l.in(s.h, "ip", "addr", "add", "100.64."+s.net+".2/24", "dev", "eth0")
		l.in(s.h, "ip", "link", "set", "eth0", "up")
		l.in(s.h, "ip", "route", "add", "default", "via", "100.64."+s.net+".1")
		l.in(s.r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"}
		if mode == "random" {
			masq = append(masq, "--random")
		}
		rules := [][]string{masq,
			{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "wan0", "-j", "DROP"},
			{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		}
		if mode != "nofw" {
			rules = append(rules, []string{"-A", "INPUT", "-i", "wan0", "-j", "DROP"})
		}
		for _, rule := range rules {
			l.in(s.r, append([]string{"iptables"}, rule...)...)
		}
	}
	return l
}

// TestHolePunchModes: per router mode, B reaches A through the relay, both
// punch, and the transfer completes; it reports where the bytes flowed.
func TestHolePunchModes(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var matrix []string
	for _, mode := range []string{"plain", "random", "nofw"} {
		t.Run(mode, func(t *testing.T) {
			l := newPunchLab(t, mode)
			_, relayLog := l.start("P", "relay", []string{"SHOAL_NAT_HELPER=relay", "SHOAL_NAT_RENDEZVOUS=" + punchRendezvous}, self)
			waitLog(t, relayLog, "rendezvous listening", 10*time.Second)
			_, aLog := l.start("A", "punch-a", []string{"SHOAL_NAT_HELPER=punch-a"}, self)
			waitLog(t, aLog, "reachable through relay", 20*time.Second)
			b, bLog := l.start("B", "punch-b", []string{"SHOAL_NAT_HELPER=punch-b"}, self)
			done := make(chan error, 1)
			go func() { done <- b.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("receiver failed: %v", err)
				}
			case <-time.After(120 * time.Second):
				t.Fatal("receiver still running after 120 s")
			}
			waitLog(t, aLog, "punch result", 60*time.Second)
			bb, _ := os.ReadFile(bLog)
			ab, _ := os.ReadFile(aLog)
			res := strings.TrimSpace(firstLine(string(bb), "transfer "))
			pa, pb := strings.TrimSpace(firstLine(string(ab), "punch result")), strings.TrimSpace(firstLine(string(bb), "punch result"))
			t.Logf("%s: B %s | A %s | %s", mode, pb, pa, res)
			matrix = append(matrix, fmt.Sprintf("%-6s  B: %s  A: %s  %s", mode, pb, pa, res))
			var relayed, direct int64
			if _, err := fmt.Sscanf(res, "transfer complete relay=%d direct=%d", &relayed, &direct); err != nil {
				t.Fatalf("receiver output %q: %v", res, err)
			}
			switch mode {
			case "plain":
				if !strings.Contains(pb, "success") || !strings.Contains(pa, "success") || direct <= relayed {
					t.Fatalf("port-preserving NAT: want a punched connection carrying the bulk (relay %d, direct %d)", relayed, direct)
				}
			case "random":
				if !strings.Contains(pb, "fallback") || direct != 0 || relayed != punchTotal {
					t.Fatalf("random NAT: want a clean fallback with all bytes relayed (relay %d, direct %d)", relayed, direct)
				}
			case "nofw":
				// either outcome is allowed; the transfer must complete (checked above)
				if !strings.Contains(pb, "rounds=") {
					t.Fatalf("no punch outcome from B: %q", pb)
				}
			}
		})
	}
	t.Logf("success matrix:\n%s", strings.Join(matrix, "\n"))
}

// helperPunchA is the sender: registered at the relay (torrent punchIH),
// it answers relayed connections and punches on request.
func helperPunchA() int {
	ctx, cancel := helperContext()
	defer cancel()
	log := helperLog()
	conns := make(chan net.Conn, 1)
	rc, err := relay.NewClient(relay.ClientConfig{
		Relays: []string{relayMain}, PeerID: peerID('A'), BehindNAT: true, Logger: log,
		Torrents: func() []relay.Torrent { return []relay.Torrent{{InfoHash: punchIH}} },
		OnConn: func(c net.Conn) {
			select {
			case conns <- c:
			default:
				c.Close()
			}
		},
	})
	if err != nil {
		fmt.Println("punch-a:", err)
		return 1
	}
	go rc.Run(ctx)
	var relayed net.Conn
	select {
	case relayed = <-conns:
	case <-ctx.Done():
		return 1
	}
	defer relayed.Close()
	var hs [68]byte
	if _, err := io.ReadFull(relayed, hs[:]); err != nil {
		fmt.Println("punch-a: handshake:", err)
		return 1
	}
	var direct atomic.Pointer[net.Conn]
	var ctr nat.Counters
	go func() {
		c, err := nat.Upgrade(ctx, punchConfig(peerID('A'), peerID('B'), false, &ctr))
		fmt.Printf("punch result=%s rounds=%d err=%v\n", outcome(err), ctr.Attempts.Load(), err)
		if err == nil {
			direct.Store(&c)
		}
	}()
	for i := 0; i < punchTotal/punchChunk; i++ {
		w := relayed
		if p := direct.Load(); p != nil {
			w = *p
		}
		if _, err := w.Write(chunk(i)); err != nil {
			fmt.Println("punch-a: send:", err)
			return 1
		}
	}
	fmt.Println("punch-a: all sent")
	<-ctx.Done()
	if p := direct.Load(); p != nil {
		(*p).Close()
	}
	return 0
}

// helperPunchB is the receiver: it connects to A's relay port with a
// handshake, asks for a punch and reads chunks from both connections.
func helperPunchB() int {
	ctx, cancel := helperContext()
	defer cancel()
	relayed, err := net.DialTimeout("tcp", relayIP+":30000", 5*time.Second)
	if err != nil {
		fmt.Println("punch-b:", err)
		return 1
	}
	defer relayed.Close()
	hs := append([]byte{19}, "BitTorrent protocol"...)
	hs = append(hs, make([]byte, 8)...)
	id := peerID('B')
	hs = append(append(hs, punchIH[:]...), id[:]...)
	if _, err := relayed.Write(hs); err != nil {
		fmt.Println("punch-b:", err)
		return 1
	}
	var got, fromRelay, fromDirect atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	var bad atomic.Value
	readFrom := func(c net.Conn, n *atomic.Int64) {
		buf := make([]byte, punchChunk)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			i := int(binary.BigEndian.Uint32(buf))
			if string(buf) != string(chunk(i)) {
				bad.Store(fmt.Sprintf("chunk %d corrupt", i))
			}
			n.Add(punchChunk)
			if got.Add(punchChunk) == punchTotal {
				once.Do(func() { close(all) })
			}
		}
	}
	go readFrom(relayed, &fromRelay)
	var ctr nat.Counters
	result := make(chan string, 1)
	go func() {
		c, err := nat.Upgrade(ctx, punchConfig(id, peerID('A'), true, &ctr))
		result <- fmt.Sprintf("punch result=%s rounds=%d err=%v", outcome(err), ctr.Attempts.Load(), err)
		if err == nil {
			defer c.Close()
			readFrom(c, &fromDirect)
		}
	}()
	select {
	case <-all:
	case <-time.After(100 * time.Second):
		fmt.Println("punch-b: transfer incomplete", got.Load())
		return 1
	}
	fmt.Println(<-result) // the punch outcome, also when the relay was faster
	if v := bad.Load(); v != nil {
		fmt.Println("punch-b:", v)
		return 1
	}
	fmt.Printf("transfer complete relay=%d direct=%d\n", fromRelay.Load(), fromDirect.Load())
	return 0
}

func punchConfig(self, peer [20]byte, initiator bool, ctr *nat.Counters) nat.UpgradeConfig {
	return nat.UpgradeConfig{Rendezvous: punchRendezvous, Self: self, Peer: peer, Initiator: initiator,
		Rounds: 3, Window: 3 * time.Second, Pause: 11 * time.Second, // > conntrack's 10 s CLOSE timeout
		Counters: ctr, Logger: helperLog()}
}

func outcome(err error) string {
	if err == nil {
		return "success"
	}
	return "fallback"
}

// chunk i: its index, then bytes from a generator seeded by it.
func chunk(i int) []byte {
	b := make([]byte, punchChunk)
	rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), 7}).Read(b)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// helperRendezvous runs beside the relay when SHOAL_NAT_RENDEZVOUS is set.
func helperRendezvous(ctx context.Context) {
	addr := os.Getenv("SHOAL_NAT_RENDEZVOUS")
	if addr == "" {
		return
	}
	s, err := nat.NewRendezvousServer(addr, helperLog())
	if err != nil {
		fmt.Println("rendezvous:", err)
		return
	}
	fmt.Println("rendezvous listening on", s.Addr())
	go s.Serve(ctx)
}

var _ = netip.Addr{}
