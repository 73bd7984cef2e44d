package nat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestShoalCLIHolePunch is TestShoalPeersHolePunch with the real commands:
//
//	P  shoal relay --rendezvous 198.18.100.10:7001 (plus opentracker)
//	A  shoal seed --relay P:7000 --behind-nat --rendezvous P:7001
//	B  shoal get --rendezvous P:7001 (learns the relay's address for A from the tracker)
//
// plain: the punch succeeds and the relay carries less than half the file;
// random: the punch fails, the download completes through the relay.
func TestShoalCLIHolePunch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("NAT lab needs root (network namespaces)")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Skip("needs the go tool to build shoal")
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/shoal-p2p/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("build shoal: %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(bin), 0o755)
	for _, mode := range []string{"plain", "random"} {
		t.Run(mode, func(t *testing.T) {
			l := newPunchLab(t, mode)
			if _, err := exec.LookPath("opentracker"); err != nil {
				t.Skip("needs opentracker")
			}
			seedDir, outDir, torrent, data := punchSwarm(t, l, "shoal-clipunch-", 11, mode)

			relayCmd, relayLog := l.start("P", "relay", nil, bin, "relay", "--listen", relayMain, "--ports", "30000-30009",
				"--rendezvous", punchRendezvous, "--peer-rate", strconv.Itoa(shoalRelayRate), "--stats-every", "1s", "-v")
			waitLog(t, relayLog, "rendezvous listening", 10*time.Second)
			seedCmd, seedLog := l.start("A", "shoal-seed", nil, bin, "seed", "-v", "--no-dht", "--listen", seederIP+":6881",
				"--relay", relayMain, "--behind-nat", "--rendezvous", punchRendezvous, "-d", seedDir, torrent)
			waitLog(t, seedLog, "reachable through relay", 30*time.Second)
			waitLog(t, relayLog, "relay announced", 30*time.Second)

			get, getLog := l.start("B", "shoal-get", nil, bin, "get", "-v", "--no-dht", "--listen", punchBIP+":6881",
				"--rendezvous", punchRendezvous, "-o", outDir, torrent)
			done := make(chan error, 1)
			go func() { done <- get.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("shoal get failed: %v", err)
				}
			case <-time.After(150 * time.Second):
				t.Fatal("shoal get still running after 150 s")
			}
			got, err := os.ReadFile(filepath.Join(outDir, "payload.bin"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded content differs (%v)", err)
			}
			if mode == "random" {
				// shoal get may finish through the relay before the punch gives up
				waitLog(t, seedLog, "hole punch failed; staying on the relay", 60*time.Second)
			}
			stopProc(seedCmd)
			relayed := finalCLIRelayBytes(t, relayLog)
			stopProc(relayCmd)
			gb, _ := os.ReadFile(getLog)
			sb, _ := os.ReadFile(seedLog)
			t.Logf("%s: relay carried %d of %d bytes", mode, relayed, len(data))
			switch mode {
			case "plain":
				if !bytes.Contains(gb, []byte("punch succeeded")) || !bytes.Contains(sb, []byte("dropping relayed connection")) {
					t.Fatal("no punched connection replaced the relayed one")
				}
				if relayed >= int64(len(data))/2 {
					t.Fatalf("the relay carried %d of %d bytes: the bulk did not flow directly", relayed, len(data))
				}
			case "random":
				if bytes.Contains(gb, []byte("punch succeeded")) || bytes.Contains(sb, []byte("punch succeeded")) {
					t.Fatal("a punch succeeded through a --random NAT")
				}
				if relayed < int64(len(data)) {
					t.Fatalf("the relay carried %d of %d bytes: want everything relayed", relayed, len(data))
				}
			}
		})
	}
}

var cliRelayStatsRe = regexp.MustCompile(`msg="relay stats" peers=\d+ conns=(\d+) spliced=\d+ .*bytes=(\d+)`)

// finalCLIRelayBytes waits for a `shoal relay` stats line with no open
// connection and returns its byte count.
func finalCLIRelayBytes(t *testing.T, path string) int64 {
	t.Helper()
	return waitRelayIdle(t, path, cliRelayStatsRe, 1, 2)
}
