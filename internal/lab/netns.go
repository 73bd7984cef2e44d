package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NSPrefix starts the name of every namespace a lab creates:
// shl<pid>-br (bridge), shl<pid>-s (server), shl<pid>-p<i> (peers).
const NSPrefix = "shl"

var nsName = regexp.MustCompile(`^` + NSPrefix + `([0-9]+)-(br|s|p[0-9]+)$`)

// ServerAddr is the server host's address; peer i (1-based) is 198.18.1.(10+i).
var ServerAddr = netip.MustParseAddr("198.18.1.1")

// PeerAddr returns the address of peer i (1-based).
func PeerAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}) // i <= MaxPeers keeps it in 198.18.1.0/24
}

// Net is the set of namespaces of one lab: a bridge namespace holding br0
// and one bridge-side veth per host, a server host and N peer hosts, each
// with eth0 in 198.18.0.0/15 and no other route. Nothing is created in
// the root namespace. Static after Setup; Close removes everything.
type Net struct {
	ID     string // shl<pid>
	Bridge string // namespace names
	Server string
	Peers  []string
	made   []string // namespaces created so far, for Close
}

// hostNS returns the namespace and bridge-side port of host h (0 = server).
func (n *Net) host(h int) (ns, port string) {
	if h == 0 {
		return n.Server, "vs"
	}
	return n.Peers[h-1], "vp" + strconv.Itoa(h)
}

func hostAddr(h int) netip.Addr {
	if h == 0 {
		return ServerAddr
	}
	return PeerAddr(h)
}

// mac is the deterministic MAC of a lab address (02:c6:<ip bytes>).
func mac(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:c6:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func runCmd(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// tbf returns the tc arguments shaping at mbit Mbit/s: burst = max(4 ms of
// tokens, 4000 B, 2 frames), limit = 50 ms of data + burst.
func tbf(mbit float64, mtu int) string {
	bps := mbit * 1e6 / 8
	burst := max(int(bps*0.004), 4000, 2*(mtu+14))
	limit := int(bps*0.05) + burst
	return fmt.Sprintf("tbf rate %dbit burst %d limit %d", int64(mbit*1e6), burst, limit)
}

// Setup creates the namespaces, links, addresses and shaping for cfg.
// On error everything created so far is removed.
func Setup(ctx context.Context, cfg *Config) (_ *Net, err error) {
	id := NSPrefix + strconv.Itoa(os.Getpid())
	n := &Net{ID: id, Bridge: id + "-br", Server: id + "-s"}
	for i := 1; i <= cfg.N; i++ {
		n.Peers = append(n.Peers, id+"-p"+strconv.Itoa(i))
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	all := append([]string{n.Bridge, n.Server}, n.Peers...)
	for _, ns := range all {
		if err := runCmd(ctx, "", "ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		n.made = append(n.made, ns)
	}
	mtu := strconv.Itoa(cfg.MTU)
	// veth pairs are created directly inside their namespaces.
	var root strings.Builder
	for h := 0; h <= cfg.N; h++ {
		ns, port := n.host(h)
		fmt.Fprintf(&root, "link add name eth0 netns %s mtu %s", ns, mtu)
		if cfg.StaticARP {
			fmt.Fprintf(&root, " address %s", mac(hostAddr(h)))
		}
		fmt.Fprintf(&root, " type veth peer name %s netns %s mtu %s\n", port, n.Bridge, mtu)
	}
	if err := runCmd(ctx, root.String(), "ip", "-batch", "-"); err != nil {
		return nil, err
	}
	var br, brtc strings.Builder
	fmt.Fprintf(&br, "link set lo up\nlink add br0 mtu %s type bridge stp_state 0\nlink set br0 addrgenmode none\nlink set br0 up\n", mtu)
	for h := 0; h <= cfg.N; h++ {
		_, port := n.host(h)
		fmt.Fprintf(&br, "link set %s addrgenmode none\nlink set %s master br0 up\n", port, port)
		if h > 0 && cfg.PeerDown(h-1) > 0 { // the bridge port's egress is the host's ingress
			fmt.Fprintf(&brtc, "qdisc replace dev %s root handle 1: %s\n", port, tbf(cfg.PeerDown(h-1), cfg.MTU))
		}
	}
	if err := runCmd(ctx, br.String(), "ip", "-n", n.Bridge, "-batch", "-"); err != nil {
		return nil, err
	}
	if brtc.Len() > 0 {
		if err := runCmd(ctx, brtc.String(), "tc", "-n", n.Bridge, "-batch", "-"); err != nil {
			return nil, err
		}
	}
	// br_netfilter may be absent; when present, keep bridged frames out of iptables.
	_ = runCmd(ctx, "", "ip", "netns", "exec", n.Bridge, "sh", "-c",
		"test ! -e /proc/sys/net/bridge/bridge-nf-call-iptables || echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables")
	for h := 0; h <= cfg.N; h++ {
		ns, _ := n.host(h)
		var b strings.Builder
		fmt.Fprintf(&b, "link set lo up\nlink set eth0 addrgenmode none\naddr add %s/24 dev eth0\nlink set eth0 up\n", hostAddr(h))
		if cfg.StaticARP {
			for o := 0; o <= cfg.N; o++ {
				if o != h {
					fmt.Fprintf(&b, "neigh replace %s lladdr %s dev eth0 nud permanent\n", hostAddr(o), mac(hostAddr(o)))
				}
			}
		}
		if err := runCmd(ctx, b.String(), "ip", "-n", ns, "-batch", "-"); err != nil {
			return nil, err
		}
		up := cfg.ServerMbit
		if h > 0 {
			up = cfg.PeerUp(h - 1)
		}
		args := append([]string{"-n", ns, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:"}, strings.Fields(tbf(up, cfg.MTU))...)
		if err := runCmd(ctx, "", "tc", args...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Sent is a qdisc's transmit counter: L2 bytes and frames sent (a GSO
// packet counts as the segments it becomes on the wire) and frames dropped
// because the queue was full.
type Sent struct {
	Bytes, Packets, Dropped int64
}

// QdiscSent returns what went out through the root qdisc of dev in ns.
func QdiscSent(ctx context.Context, ns, dev string) (Sent, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tc", "-n", ns, "-s", "qdisc", "show", "dev", dev).Output()
	if err != nil {
		return Sent{}, fmt.Errorf("tc -s qdisc show %s/%s: %w", ns, dev, err)
	}
	// "qdisc tbf 1: root refcnt 2 rate ...\n Sent 12345 bytes 67 pkt (dropped ...)"
	if s, ok := parseSentLine(strings.Fields(string(out))); ok {
		return s, nil
	}
	return Sent{}, fmt.Errorf("tc -s qdisc show %s/%s: no byte count in %q", ns, dev, out)
}

// parseSentLine finds "Sent B bytes P pkt (dropped D, ..." in fields.
func parseSentLine(f []string) (Sent, bool) {
	for i := 0; i+4 < len(f); i++ {
		if f[i] == "Sent" && f[i+2] == "bytes" && f[i+4] == "pkt" {
			b, err1 := strconv.ParseInt(f[i+1], 10, 64)
			p, err2 := strconv.ParseInt(f[i+3], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			s := Sent{Bytes: b, Packets: p}
			if i+6 < len(f) && f[i+5] == "(dropped" {
				s.Dropped, _ = strconv.ParseInt(strings.TrimSuffix(f[i+6], ","), 10, 64)
			}
			return s, true
		}
	}
	return Sent{}, false
}

// Close kills whatever still runs inside the lab's namespaces (only its own
// namespaces are looked at) and deletes them; the veths and the bridge
// vanish with them. Safe to call twice.
func (n *Net) Close() error {
	var first error
	for i := len(n.made) - 1; i >= 0; i-- {
		if err := removeNS(n.made[i]); err != nil && first == nil {
			first = err
		}
	}
	n.made = nil
	return first
}

func removeNS(ns string) error {
	ctx := context.Background()
	for range 3 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return runCmd(ctx, "", "ip", "netns", "del", ns)
}

// Leftover is a namespace or mount left by a lab that did not clean up.
type Leftover struct {
	Name string // namespace name or mount point
	PID  int    // the lab process that made it
	Live bool   // that process still exists
	IsNS bool
}

// FindLeftovers lists lab namespaces in /run/netns and lab tmpfs mounts.
func FindLeftovers() ([]Leftover, error) {
	var out []Leftover
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for _, e := range ents {
		m := nsName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		out = append(out, Leftover{Name: e.Name(), PID: pid, Live: alive(pid), IsNS: true})
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" {
			continue
		}
		if pid, ok := dataDirPID(f[1]); ok {
			out = append(out, Leftover{Name: f[1], PID: pid, Live: alive(pid)})
		}
	}
	return out, nil
}

// RemoveLeftover deletes one leftover namespace (killing what runs in it)
// or unmounts one leftover data mount.
func RemoveLeftover(l Leftover) error {
	if l.IsNS {
		if !nsName.MatchString(l.Name) {
			return fmt.Errorf("%q is not a lab namespace", l.Name)
		}
		return removeNS(l.Name)
	}
	if _, ok := dataDirPID(l.Name); !ok {
		return fmt.Errorf("%q is not a lab mount", l.Name)
	}
	if err := syscall.Unmount(l.Name, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("umount %s: %w", l.Name, err)
	}
	return os.Remove(l.Name)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}
