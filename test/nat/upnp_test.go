package nat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/nat"
)

// The port-mapping lab: miniupnpd (Debian) runs in the foreground inside a
// router namespace RU. miniupnpd refuses to forward when its WAN address is
// reserved (198.18.0.0/15 is), so this lab's isolated "Internet" is
// 11.250.42.0/24 (the example miniupnpd's own tests use as public); it
// exists only inside these namespaces, which have no link to the host.
//
//	inet  bridge br0
//	Q     11.250.42.10   public host that connects inward
//	RU    wan0 11.250.42.1, lan0 100.64.3.1   NAT router + miniupnpd (NAT-PMP and UPnP on lan0)
//	H     100.64.3.2     shoal's port forwarder + a TCP listener on :25000
const (
	upWAN     = "11.250.42.1"
	upPublic  = "11.250.42.10"
	upRouter  = "100.64.3.1"
	upHost    = "100.64.3.2"
	upPort    = 25000
	upGreeter = "hello from behind the NAT\n"
)

func newUPnPLab(t *testing.T) *lab {
	if os.Geteuid() != 0 {
		t.Skip("NAT lab needs root (network namespaces)")
	}
	for _, bin := range []string{"ip", "iptables", "nft", "miniupnpd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("port-mapping lab needs %s", bin)
		}
	}
	l := &lab{t: t, prefix: fmt.Sprintf("swu%d-", os.Getpid()), names: []string{"inet", "Q", "RU", "H"}}
	t.Cleanup(l.cleanup)
	for _, n := range l.names {
		run(t, "ip", "netns", "add", l.ns(n))
		l.in(n, "ip", "link", "set", "lo", "up")
	}
	l.in("inet", "ip", "link", "add", "br0", "type", "bridge")
	l.in("inet", "ip", "link", "set", "br0", "up")
	for _, h := range []struct{ ns, dev, addr string }{{"Q", "eth0", upPublic}, {"RU", "wan0", upWAN}} {
		port := "v" + h.ns
		run(t, "ip", "link", "add", port, "netns", l.ns("inet"), "type", "veth", "peer", "name", h.dev, "netns", l.ns(h.ns))
		l.in("inet", "ip", "link", "set", port, "master", "br0", "up")
		l.in(h.ns, "ip", "addr", "add", h.addr+"/24", "dev", h.dev)
		l.in(h.ns, "ip", "link", "set", h.dev, "up")
	}
	run(t, "ip", "link", "add", "lan0", "netns", l.ns("RU"), "type", "veth", "peer", "name", "eth0", "netns", l.ns("H"))
	l.in("RU", "ip", "addr", "add", upRouter+"/24", "dev", "lan0")
	l.in("RU", "ip", "link", "set", "lan0", "up")
	l.in("H", "ip", "addr", "add", upHost+"/24", "dev", "eth0")
	l.in("H", "ip", "link", "set", "eth0", "up")
	l.in("H", "ip", "route", "add", "default", "via", upRouter)
	l.in("RU", "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"},
		{"-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED,DNAT", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-j", "DROP"},
		{"-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "wan0", "-j", "DROP"},
	} {
		l.in("RU", append([]string{"iptables"}, rule...)...)
	}
	return l
}

// miniupnpdTables is the nftables skeleton miniupnpd 2.3 (nft backend)
// fills in: its forward, DNAT and SNAT chains, hooked like Debian's
// nft_init.sh does, but with an accepting forward policy (the iptables rules
// above still drop unsolicited inbound traffic that was not DNATed).
const miniupnpdTables = `table inet miniupnpd {
	chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
	chain miniupnpd { }
	chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
	chain prerouting_miniupnpd { }
	chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
	chain postrouting_miniupnpd { }
}
`

// startMiniupnpd writes a config and runs miniupnpd -d in RU.
func startMiniupnpd(t *testing.T, l *lab) string {
	dir := t.TempDir()
	tables := filepath.Join(dir, "tables.nft")
	os.WriteFile(tables, []byte(miniupnpdTables), 0o644)
	l.in("RU", "nft", "-f", tables)
	conf := strings.Join([]string{
		"ext_ifname=wan0", "listening_ip=lan0", "port=5555", "enable_natpmp=yes", "enable_upnp=yes",
		"secure_mode=yes", "system_uptime=yes", "uuid=6a886f2e-8586-4443-ae10-4c229016da7c",
		"upnp_table_name=miniupnpd", "upnp_nat_table_name=miniupnpd",
		"lease_file=" + filepath.Join(dir, "leases"),
		"allow 1024-65535 100.64.0.0/10 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535", "",
	}, "\n")
	path := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, log := l.start("RU", "miniupnpd", nil, "miniupnpd", "-d", "-f", path, "-P", filepath.Join(dir, "pid"))
	waitLog(t, log, "Listening for NAT-PMP", 10*time.Second)
	return log
}

// dialGreeter connects from Q to the router's public address and reads the greeting.
func dialGreeter(l *lab, port uint16) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", l.ns("Q"), "/usr/bin/python3", "-c", fmt.Sprintf(
		"import socket; s=socket.create_connection(('%s', %d), timeout=2); s.settimeout(2); print(s.recv(100).decode(), end='')", upWAN, port)).CombinedOutput()
	return string(out), err
}

// TestPortForwardMiniupnpd: shoal's forwarder maps a port on a real
// miniupnpd by NAT-PMP and by UPnP-IGD; the public host reaches the private
// listener through the router's public address; on exit the mapping is gone.
func TestPortForwardMiniupnpd(t *testing.T) {
	l := newUPnPLab(t)
	mlog := startMiniupnpd(t, l)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// without a mapping the NAT blocks inbound connections
	if out, err := dialGreeter(l, upPort); err == nil {
		t.Fatalf("router forwarded before any mapping: %q", out)
	}
	for _, method := range []string{"nat-pmp", "upnp"} {
		t.Run(method, func(t *testing.T) {
			cmd, hlog := l.start("H", "forward-"+method, []string{"SHOAL_NAT_HELPER=forward", "SHOAL_NAT_METHOD=" + method}, self)
			waitLog(t, hlog, "mapped ", 20*time.Second)
			b, _ := os.ReadFile(hlog)
			t.Logf("forwarder: %s", strings.TrimSpace(firstLine(string(b), "mapped ")))
			if !strings.Contains(string(b), "method="+method) {
				t.Fatalf("mapping not made by %s:\n%s", method, b)
			}
			got, err := dialGreeter(l, upPort)
			if err != nil || got != upGreeter {
				t.Fatalf("public host through the mapping: %q, %v", got, err)
			}
			// exit: the forwarder removes its mapping
			cmd.Process.Signal(os.Interrupt)
			syscallKillGroup(cmd, "TERM")
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("forwarder did not exit")
			}
			b, _ = os.ReadFile(hlog)
			if !strings.Contains(string(b), "port mapping removed") {
				t.Fatalf("forwarder did not remove its mapping:\n%s", b)
			}
			if out, err := dialGreeter(l, upPort); err == nil {
				t.Fatalf("router still forwards after removal: %q", out)
			}
		})
	}
	if t.Failed() {
		b, _ := os.ReadFile(mlog)
		t.Logf("miniupnpd:\n%s", b)
	}
}

func firstLine(s, prefix string) string {
	for _, ln := range strings.Split(s, "\n") {
		if strings.Contains(ln, prefix) {
			return ln
		}
	}
	return ""
}

// helperForward runs in H: a greeter on :upPort and a port mapping by
// SHOAL_NAT_METHOD, until SIGTERM; then the mapping is removed.
func helperForward() int {
	ctx, cancel := helperContext()
	defer cancel()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", upHost, upPort))
	if err != nil {
		fmt.Println("forward:", err)
		return 1
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(upGreeter))
			c.Close()
		}
	}()
	method := os.Getenv("SHOAL_NAT_METHOD")
	cfg := nat.ForwardConfig{Protocol: "tcp", Port: upPort, Lease: time.Hour, Description: "shoal lab", Logger: helperLog(),
		NoNATPMP: method == "upnp", NoUPnP: method == "nat-pmp"}
	if method == "nat-pmp" {
		cfg.Gateway = netip.MustParseAddr(upRouter) // and DefaultGateway is checked to agree
		if gw, err := nat.DefaultGateway(); err != nil || gw != cfg.Gateway {
			fmt.Println("forward: default gateway", gw, err)
			return 1
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 15*time.Second)
	f, err := nat.Forward(fctx, cfg)
	fcancel()
	if err != nil {
		fmt.Println("forward:", err)
		return 1
	}
	m := f.Mapping()
	fmt.Printf("mapped method=%s external=%v internal=%d lifetime=%v\n", m.Method, m.External, m.InternalPort, m.Lifetime)
	f.Run(ctx) // returns after removing the mapping
	return 0
}

// syscallKillGroup signals cmd's process group (it runs under ip netns exec).
func syscallKillGroup(cmd *exec.Cmd, sig string) {
	if cmd.Process != nil {
		exec.Command("kill", "-"+sig, "--", fmt.Sprintf("-%d", cmd.Process.Pid)).Run()
	}
}
