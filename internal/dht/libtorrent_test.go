package dht

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// freeLoopbackPort returns a port in 20000-32000 free for both TCP and UDP
// on 127.0.0.1 (libtorrent listens on both).
func freeLoopbackPort(t *testing.T) int {
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(12000)
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("no free port")
	return 0
}

// ltProc is the running testdata/lt_dht.py.
type ltProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	peers map[string][]string // info-hash hex -> peers seen in replies
}

func (p *ltProc) send(t *testing.T, format string, a ...any) {
	if _, err := fmt.Fprintf(p.stdin, format+"\n", a...); err != nil {
		t.Fatalf("lt_dht.py: %v", err)
	}
}

func (p *ltProc) peersOf(ih string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peers[ih])
}

func startLibtorrent(t *testing.T, ports []int, dhtNodes []string) *ltProc {
	if err := exec.Command(python, "-c", "import libtorrent").Run(); err != nil {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatalf("python3-libtorrent is required (SHOAL_REQUIRE_INTEROP=1): %v", err)
		}
		t.Skipf("python3-libtorrent not installed: %v", err)
	}
	var ps []string
	for _, p := range ports {
		ps = append(ps, fmt.Sprint(p))
	}
	cmd := exec.Command(python, "testdata/lt_dht.py", "--ports", strings.Join(ps, ","),
		"--dht", strings.Join(dhtNodes, ","), "--max-seconds", "120")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ltProc{cmd: cmd, stdin: stdin, peers: map[string][]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			p.mu.Lock()
			switch {
			case len(f) >= 2 && f[0] == "peers":
				for _, peer := range f[2:] {
					if !slices.Contains(p.peers[f[1]], peer) {
						p.peers[f[1]] = append(p.peers[f[1]], peer)
					}
				}
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the script exits on EOF
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
	return p
}

// eventually retries f every interval until it returns true or d passes.
func eventually(d, interval time.Duration, f func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(interval)
	}
	return false
}

func TestLibtorrentInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// shoal node A is a bootstrap node for everyone
	a := newTestServer(t, nil, nil)
	ports := []int{freeLoopbackPort(t), freeLoopbackPort(t)}
	lt := startLibtorrent(t, ports, []string{a.Addr().String()})
	var ltAddrs []string
	for _, p := range ports {
		ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
		ltAddrs = append(ltAddrs, ap.String())
	}
	// libtorrent nodes answer our queries
	for _, s := range ltAddrs {
		ap := netip.MustParseAddrPort(s)
		if !eventually(20*time.Second, 200*time.Millisecond, func() bool {
			id, err := a.Ping(ctx, ap)
			return err == nil && id != [20]byte{}
		}) {
			t.Fatalf("libtorrent node %s never answered a ping", s)
		}
		a.AddNode(ap)
	}
	// shoal node B knows only the libtorrent nodes
	b := newTestServer(t, ltAddrs, nil)
	if err := b.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap from libtorrent nodes: %v", err)
	}

	// 1. libtorrent announces; shoal finds it with GetPeers
	ih1 := "aa" + strings.Repeat("01", 19)
	want1 := netip.MustParseAddrPort(ltAddrs[0]) // libtorrent announces its listen port
	var ih1b [20]byte
	hex.Decode(ih1b[:], []byte(ih1))
	var got []netip.AddrPort
	if !eventually(40*time.Second, 2*time.Second, func() bool {
		lt.send(t, "kick")
		lt.send(t, "announce 0 %s", ih1)
		time.Sleep(time.Second)
		peers, err := b.GetPeers(ctx, ih1b)
		got = peers
		return err == nil && slices.Contains(peers, want1)
	}) {
		t.Fatalf("shoal GetPeers never found libtorrent's announce: last %v", got)
	}

	// 2. shoal announces; libtorrent finds it with dht_get_peers
	ih2 := "bb" + strings.Repeat("02", 19)
	var ih2b [20]byte
	hex.Decode(ih2b[:], []byte(ih2))
	if !eventually(40*time.Second, 2*time.Second, func() bool {
		if _, err := b.Announce(ctx, ih2b, 7002, false); err != nil {
			t.Logf("announce: %v", err)
			return false
		}
		lt.send(t, "get_peers 1 %s", ih2)
		time.Sleep(time.Second)
		return slices.Contains(lt.peersOf(ih2), "127.0.0.1:7002")
	}) {
		t.Fatalf("libtorrent never found shoal's announce; it saw %v", lt.peersOf(ih2))
	}
}
