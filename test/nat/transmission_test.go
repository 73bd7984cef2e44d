package nat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

const (
	trPeerPort = 6881 // transmission's peer port in namespace D
	trRPCPort  = 9091 // transmission's RPC port on 127.0.0.1 inside namespace D
)

var (
	trPercentRe   = regexp.MustCompile(`Percent Done:\s*([0-9.]+)%`)
	trRelayStatRe = regexp.MustCompile(`Spliced:(\d+) .*Bytes:(\d+)`)
)

// TestTransmissionDownloadsFromNATedSeeder is TestLibtorrentDownloadsFromNATedSeeder
// with an unmodified transmission-daemon as the downloader on the public
// segment (namespace D): the shoal seeder in A sits behind the MASQUERADE
// router RA, finds out through the relay's dial-back probe that it needs the
// relay, the relay announces its public port for it, and Transmission, which
// learns only the relay's address from the tracker, downloads the whole file
// through the relay's splice (plain TCP, no uTP, no DHT/PEX/LPD).
func TestTransmissionDownloadsFromNATedSeeder(t *testing.T) {
	for _, bin := range []string{"transmission-daemon", "transmission-remote"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install transmission-daemon transmission-cli)", bin)
		}
	}
	l := newLab(t)
	// The NAT really blocks: from D, neither the router's public address nor
	// the seeder's private one is reachable.
	for _, target := range []string{routerWAN, seederIP} {
		if out, err := exec.Command("ip", "netns", "exec", l.ns("D"), "/usr/bin/python3", "-c",
			"import socket; socket.create_connection(('"+target+"', 6881), timeout=2)").CombinedOutput(); err == nil {
			t.Fatalf("an inbound connection from the public segment to %s:6881 succeeded: %s", target, out)
		}
	}

	dir, seedDir, torrent, data := relaySwarm(t)

	l.startOpentracker(dir)

	relayLog := startRelay(t, l)
	startNATedSeeder(t, l, torrent, seedDir, relayLog)
	// before Transmission runs, the relay has carried nothing
	if sp, by, _, ok := trRelayStats(relayLog); ok && (sp != 0 || by != 0) {
		t.Fatalf("relay spliced %d connections (%d bytes) before the downloader started", sp, by)
	}

	// transmission-daemon in D, with its own config dir
	cfgDir := filepath.Join(dir, "tr-config")
	out := filepath.Join(dir, "tr-down")
	for _, d := range []string{cfgDir, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeTrSettings(t, cfgDir, out)
	l.start("D", "transmission", []string{"TRANSMISSION_HOME=" + cfgDir},
		"transmission-daemon", "-f", "-g", cfgDir)
	remote := func(args ...string) (string, error) {
		argv := append([]string{"netns", "exec", l.ns("D"), "transmission-remote", "127.0.0.1:" + strconv.Itoa(trRPCPort)}, args...)
		b, err := exec.Command("ip", argv...).CombinedOutput()
		return string(b), err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := remote("-l"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("transmission RPC not answering after 20 s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	start := time.Now()
	if o, err := remote("-a", torrent, "-w", out); err != nil {
		t.Fatalf("transmission-remote -a: %v\n%s", err, o)
	}
	var (
		sawRelay   bool   // the relay's address was in Transmission's peer list
		relayPeer  string // that peer-list row
		lastInfo   string
		firstBytes time.Duration // from adding the torrent to the first progress
		timeline   []string      // "seconds:percent" per poll, logged at the end
		reannounce = time.Now().Add(20 * time.Second)
	)
	deadline = time.Now().Add(150 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			pi, _ := remote("-t", "1", "-pi")
			t.Fatalf("transmission not complete after 150 s\n%s\npeers:\n%s", lastInfo, pi)
		}
		time.Sleep(time.Second)
		info, err := remote("-t", "1", "-i")
		if err != nil {
			continue
		}
		lastInfo = info
		if pi, err := remote("-t", "1", "-pi"); err == nil {
			for _, ln := range strings.Split(pi, "\n") {
				if f := strings.Fields(ln); len(f) > 0 && f[0] == relayIP {
					sawRelay, relayPeer = true, strings.TrimSpace(ln)
				}
			}
		}
		m := trPercentRe.FindStringSubmatch(info)
		done = m != nil && m[1] == "100"
		if m != nil {
			timeline = append(timeline, fmt.Sprintf("%.0fs:%s%%", time.Since(start).Seconds(), m[1]))
		}
		if pct, _ := strconv.ParseFloat(trMatch(m), 64); pct > 0 && firstBytes == 0 {
			firstBytes = time.Since(start)
		}
		if !done && !sawRelay && time.Now().After(reannounce) {
			// the first announce may have gone out before the relay's
			// announce was visible; ask once more (it is harmless if refused)
			remote("-t", "1", "--reannounce")
			reannounce = time.Now().Add(30 * time.Second)
		}
	}
	el := time.Since(start)

	// stop the torrent so Transmission flushes its cache and closes the file
	if o, err := remote("-t", "1", "-S"); err != nil {
		t.Fatalf("transmission-remote -S: %v\n%s", err, o)
	}
	got := filepath.Join(out, "payload.bin")
	deadline = time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(got)
		if err == nil && bytes.Equal(b, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("downloaded %s differs from the seeder's data (%d bytes read, err %v)", got, len(b), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !sawRelay {
		t.Errorf("transmission never listed the relay %s as a peer", relayIP)
	} else {
		t.Logf("transmission's peer entry for the relay: %s", relayPeer)
	}

	// the bytes went through the relay: it spliced at least one connection
	// and carried at least the whole file (stats lines come every 2 s)
	var statLine string
	deadline = time.Now().Add(10 * time.Second)
	for {
		sp, by, line, ok := trRelayStats(relayLog)
		statLine = line
		if ok && sp >= 1 && by >= int64(len(data)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay stats: spliced %d, bytes %d (want >= 1 and >= %d)", sp, by, len(data))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("transmission downloaded %d bytes through the relay in %v (%.1f MB/s incl. start-up)",
		len(data), el.Round(10*time.Millisecond), float64(len(data))/el.Seconds()/1e6)
	// Transmission 3.00 sends "interested" only at its next 10 s rechoke
	// pulse after connecting, then ramps its request pipeline up: most of
	// the elapsed time is that, not the relay (see the timeline).
	t.Logf("progress: %s", strings.Join(timeline, " "))
	t.Logf("first progress after %v; relay after the download: %s", firstBytes.Round(10*time.Millisecond), statLine)
}

// writeTrSettings writes a settings.json that keeps transmission-daemon on
// the lab: peers on the D host address over TCP only (the relay splices TCP),
// RPC on 127.0.0.1 open to the test.
func writeTrSettings(t *testing.T, cfgDir, downloadDir string) {
	t.Helper()
	clients.WriteTransmissionSettings(t, cfgDir, downIP, downloadDir, trPeerPort, trRPCPort, map[string]any{
		"cache-size-mb":         4,
		"rpc-whitelist-enabled": false,
	})
}

// trRelayStats parses the relay helper's last "relay stats" line.
func trRelayStats(logPath string) (spliced, relayed int64, line string, ok bool) {
	b, _ := os.ReadFile(logPath)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "relay stats") {
			continue
		}
		m := trRelayStatRe.FindStringSubmatch(lines[i])
		if m == nil {
			return 0, 0, lines[i], false
		}
		sp, _ := strconv.ParseInt(m[1], 10, 64)
		by, _ := strconv.ParseInt(m[2], 10, 64)
		return sp, by, lines[i], true
	}
	return 0, 0, "", false
}

// trMatch returns m[1], or "" when m is nil.
func trMatch(m []string) string {
	if m == nil {
		return ""
	}
	return m[1]
}
