package clients

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Peer is one running BitTorrent client. All fields are static after start.
type Peer struct {
	Kind string         // "shoal", "transmission", "aria2", "libtorrent"
	Port int            // peer port on 127.0.0.1
	Addr netip.AddrPort // 127.0.0.1:Port
	Dir  string         // scratch directory (configs, logs)
	*Proc

	rpcPort int // transmission RPC port
}

func newPeer(t testing.TB, kind string) *Peer {
	port := FreePort(t)
	return &Peer{
		Kind: kind,
		Port: port,
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)),
		Dir:  t.TempDir(),
	}
}

// WaitDone waits until a leecher has the whole torrent: for transmission the
// torrent reaches 100% (verified piece by piece); for the others the process
// exits with status 0. It does not stop the process.
func (p *Peer) WaitDone(timeout time.Duration) error {
	if p.Kind == "transmission" {
		var last string
		err := poll(timeout, 300*time.Millisecond, func() bool {
			if p.Exited() {
				return false
			}
			last = p.trList()
			return trComplete(last)
		})
		if p.Exited() {
			return fmt.Errorf("transmission exited early: %v", p.Wait(0))
		}
		if err != nil {
			return fmt.Errorf("transmission not complete after %v: %s", timeout, last)
		}
		return nil
	}
	return p.Wait(timeout)
}

// ------------------------------------------------------------ transmission

func (p *Peer) trList() string {
	out, _, _ := runCmd(10*time.Second, "transmission-remote", fmt.Sprintf("127.0.0.1:%d", p.rpcPort), "-l")
	return out
}

// trComplete reports whether the first torrent in `transmission-remote -l`
// output is at 100%.
func trComplete(list string) bool {
	lines := strings.Split(list, "\n")
	if len(lines) < 2 {
		return false
	}
	f := strings.Fields(lines[1])
	return len(f) > 1 && f[1] == "100%"
}

func startTransmission(t testing.TB, downloadDir string) *Peer {
	t.Helper()
	Require(t, TransmissionDaemon)
	p := newPeer(t, "transmission")
	p.rpcPort = FreePort(t)
	cfg := filepath.Join(p.Dir, "cfg")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(downloadDir, 0o755); err != nil {
		t.Fatal(err)
	}
	WriteTransmissionSettings(t, cfg, "127.0.0.1", downloadDir, p.Port, p.rpcPort, map[string]any{
		"preallocation":                1,
		"trash-original-torrent-files": false,
		"upload-slots-per-torrent":     14,
	})
	daemonLog := filepath.Join(p.Dir, "transmission.log")
	p.Proc = StartProc(t, "transmission", "", nil, "transmission-daemon", "-f", "-g", cfg, "-e", daemonLog)
	p.AddLog(daemonLog)
	rpc := fmt.Sprintf("127.0.0.1:%d", p.rpcPort)
	if err := poll(20*time.Second, 200*time.Millisecond, func() bool {
		_, _, err := runCmd(10*time.Second, "transmission-remote", rpc, "-l")
		return err == nil || p.Exited()
	}); err != nil || p.Exited() {
		t.Fatalf("transmission-daemon RPC did not come up on %s", rpc)
	}
	return p
}

func (p *Peer) trAdd(t testing.TB, torrent, dir string) {
	t.Helper()
	rpc := fmt.Sprintf("127.0.0.1:%d", p.rpcPort)
	if _, _, err := runCmd(30*time.Second, "transmission-remote", rpc, "-a", torrent, "-w", dir); err != nil {
		t.Fatalf("transmission-remote -a: %v", err)
	}
}

// StartTransmissionSeeder starts transmission-daemon seeding torrent from
// dataParent (the directory holding the torrent's top-level name) and
// returns once it has verified the data (100%).
func StartTransmissionSeeder(t testing.TB, torrent, dataParent string) *Peer {
	t.Helper()
	p := startTransmission(t, dataParent)
	p.trAdd(t, torrent, dataParent)
	if err := p.WaitDone(2 * time.Minute); err != nil {
		t.Fatalf("transmission seeder did not verify its data: %v", err)
	}
	return p
}

// StartTransmissionLeecher starts transmission-daemon downloading torrent
// into out. Transmission never dials 127.0.0.1 peers, so start it (and
// WaitLeechers for it) BEFORE the seeder: the seeder then dials in.
func StartTransmissionLeecher(t testing.TB, torrent, out string) *Peer {
	t.Helper()
	p := startTransmission(t, out)
	p.trAdd(t, torrent, out)
	return p
}

// ------------------------------------------------------------ aria2

func aria2Args(p *Peer, dhtPort int) []string {
	return []string{"aria2c", "--no-conf=true", "--interface=127.0.0.1", "--disable-ipv6=true",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--bt-save-metadata=false",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
		"--auto-file-renaming=false", "--allow-overwrite=true", "--bt-max-peers=55",
		"--listen-port=" + strconv.Itoa(p.Port), "--dht-listen-port=" + strconv.Itoa(dhtPort),
		"--log=" + filepath.Join(p.Dir, "aria2.log"), "--log-level=notice"}
}

// StartAria2Seeder starts aria2c seeding torrent from dataParent. It checks
// the data first (--check-integrity); wait for it with WaitSeeders.
func StartAria2Seeder(t testing.TB, torrent, dataParent string) *Peer {
	t.Helper()
	Require(t, Aria2)
	p := newPeer(t, "aria2")
	args := append(aria2Args(p, FreePort(t)), "--bt-tracker-interval=2", "-d", dataParent,
		"--check-integrity=true", "--bt-seed-unverified=false", "--seed-ratio=0.0",
		"--seed-time=600", "-T", torrent)
	p.Proc = StartProc(t, "aria2-seed", "", nil, args...)
	p.AddLog(filepath.Join(p.Dir, "aria2.log"))
	return p
}

// StartAria2Leecher starts aria2c downloading torrent into out; it exits 0
// when the download is complete and verified.
func StartAria2Leecher(t testing.TB, torrent, out string) *Peer {
	t.Helper()
	Require(t, Aria2)
	p := newPeer(t, "aria2")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(aria2Args(p, FreePort(t)), "-d", out, "--seed-time=0", "--bt-stop-timeout=600", "-T", torrent)
	p.Proc = StartProc(t, "aria2-get", "", nil, args...)
	p.AddLog(filepath.Join(p.Dir, "aria2.log"))
	return p
}

// ------------------------------------------------------------ libtorrent

// StartLibtorrentSeeder starts a python3-libtorrent seeder of torrent from
// dataParent and returns once libtorrent has checked the data. extra goes
// to seed.py, e.g. "--upload-limit", "4194304" (bytes/s, applies to
// loopback peers too).
func StartLibtorrentSeeder(t testing.TB, torrent, dataParent string, extra ...string) *Peer {
	t.Helper()
	Require(t, Libtorrent)
	p := newPeer(t, "libtorrent")
	py := pyDir(t)
	ready := filepath.Join(p.Dir, "ready")
	args := append([]string{Python, filepath.Join(py, "seed.py"), "--port", strconv.Itoa(p.Port),
		"--dir", dataParent, "--ready", ready}, extra...)
	p.Proc = StartProc(t, "lt-seed", "", nil, append(args, torrent)...)
	if err := poll(2*time.Minute, 100*time.Millisecond, func() bool {
		_, err := os.Stat(ready)
		return err == nil || p.Exited()
	}); err != nil || p.Exited() {
		t.Fatalf("libtorrent seeder not ready (exited=%v)", p.Exited())
	}
	return p
}

// StartLibtorrentLeecher starts a python3-libtorrent leecher of torrent into
// out; it exits 0 as soon as libtorrent has the whole torrent verified.
// extra goes to get.py, e.g. "--download-limit", "4194304".
func StartLibtorrentLeecher(t testing.TB, torrent, out string, extra ...string) *Peer {
	t.Helper()
	Require(t, Libtorrent)
	p := newPeer(t, "libtorrent")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	py := pyDir(t)
	args := append([]string{Python, filepath.Join(py, "get.py"), "--port", strconv.Itoa(p.Port),
		"--out", out, "--timeout", "900"}, extra...)
	p.Proc = StartProc(t, "lt-get", "", nil, append(args, torrent)...)
	return p
}

// MakeTorrentLibtorrent writes a v1 .torrent of path made by libtorrent
// (lt.create_torrent), an alternative to MakeTorrent.
func MakeTorrentLibtorrent(t testing.TB, path, out, tracker string, pieceLength int64) {
	t.Helper()
	Require(t, Libtorrent)
	py := pyDir(t)
	if _, _, err := runCmd(2*time.Minute, Python, filepath.Join(py, "mktorrent_lt.py"), "--tracker", tracker,
		"--piece-kib", strconv.FormatInt(pieceLength>>10, 10), path, out); err != nil {
		t.Fatalf("libtorrent create_torrent: %v", err)
	}
}

// WaitDoneOrStall is WaitDone that also gives up early when the bytes on
// disk below dir (DiskUsage) have not changed for stall: a transfer that
// makes no progress fails in seconds instead of at the overall timeout.
func (p *Peer) WaitDoneOrStall(dir string, timeout, stall time.Duration) error {
	start := time.Now()
	last, lastChange := int64(-1), time.Now()
	for {
		err := p.WaitDone(2 * time.Second)
		if err == nil {
			return nil
		}
		if p.Exited() {
			return err
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("%s leecher not done after %v (%d bytes on disk)", p.Kind, timeout, last)
		}
		if u := DiskUsage(dir); u != last {
			last, lastChange = u, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("%s leecher stalled: %d bytes on disk, unchanged for %v", p.Kind, u, stall)
		}
	}
}
