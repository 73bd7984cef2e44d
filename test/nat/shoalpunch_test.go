package nat

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// Two NATed shoal peers that meet through a relay (the punching lab of
// punch_test.go, plus opentracker on P):
//
//	A  shoal seeder, reachable only through the relay (behind NAT), --rendezvous
//	B  shoal downloader behind its own NAT, --rendezvous; it learns the
//	   relay's address for A from the tracker and connects there
//
// The seeder proposes a hole punch (shoal_punch); with a port-preserving
// NAT the relayed connection is replaced by a direct one and most bytes
// bypass the relay; with --random masquerade the punch fails cleanly and the
// download completes through the relay.
const (
	shoalPunchSize  = 12<<20 + 777
	shoalRelayRate  = 1 << 20 // relay bytes/s for the peer: the whole file relayed takes ~12 s
	shoalPunchPiece = 256 << 10
)

var relayStatsRe = regexp.MustCompile(`relay stats \{Peers:\d+ Conns:(\d+) Spliced:(\d+) .*Bytes:(\d+)\}`)

func TestShoalPeersHolePunch(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"plain", "random"} {
		t.Run(mode, func(t *testing.T) {
			l := newPunchLab(t, mode)
			if _, err := os.Stat("/usr/bin/opentracker"); err != nil {
				t.Skip("needs opentracker")
			}
			seedDir, outDir, torrent, data := punchSwarm(t, l, "shoal-punchlab-", 9, mode)

			relayCmd, relayLog := l.start("P", "relay", []string{"SHOAL_NAT_HELPER=relay", "SHOAL_NAT_RENDEZVOUS=" + punchRendezvous,
				"SHOAL_NAT_RELAY_RATE=" + strconv.Itoa(shoalRelayRate)}, self)
			waitLog(t, relayLog, "rendezvous listening", 10*time.Second)
			seedCmd, seedLog := l.start("A", "shoal-seed", []string{"SHOAL_NAT_HELPER=shoal-peer", "SHOAL_NAT_ROLE=seed",
				"SHOAL_NAT_LISTEN=" + seederIP + ":6881", "SHOAL_NAT_TORRENT=" + torrent, "SHOAL_NAT_DATA=" + seedDir}, self)
			waitLog(t, seedLog, "reachable through relay", 30*time.Second)
			waitLog(t, relayLog, "relay announced", 30*time.Second)

			get, getLog := l.start("B", "shoal-get", []string{"SHOAL_NAT_HELPER=shoal-peer", "SHOAL_NAT_ROLE=get",
				"SHOAL_NAT_LISTEN=" + punchBIP + ":6881", "SHOAL_NAT_TORRENT=" + torrent, "SHOAL_NAT_DATA=" + outDir}, self)
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
			gb, _ := os.ReadFile(getLog)
			var st session.PunchStats
			line := firstLine(string(gb), "shoal punch stats ")
			if _, err := fmt.Sscanf(line, "shoal punch stats attempts=%d successes=%d fallbacks=%d direct=%d",
				&st.Attempts, &st.Successes, &st.Fallbacks, &st.Direct); err != nil {
				t.Fatalf("getter output %q: %v", line, err)
			}

			// end the seeder so every splice ends and the relay counts its bytes
			stopProc(seedCmd)
			relayed := finalRelayBytes(t, relayLog)
			stopProc(relayCmd)
			t.Logf("%s: getter punch %+v; relay carried %d of %d bytes", mode, st, relayed, len(data))
			switch mode {
			case "plain":
				if st.Successes == 0 || st.Direct == 0 {
					t.Fatalf("port-preserving NAT: no direct connection (%+v)", st)
				}
				if relayed >= int64(len(data))/2 {
					t.Fatalf("the relay carried %d of %d bytes: the bulk did not flow directly", relayed, len(data))
				}
			case "random":
				if st.Successes != 0 || st.Direct != 0 || st.Fallbacks == 0 {
					t.Fatalf("random NAT: want a clean fallback (%+v)", st)
				}
				if relayed < int64(len(data)) {
					t.Fatalf("the relay carried %d of %d bytes: want everything relayed", relayed, len(data))
				}
			}
		})
	}
}

// stopProc sends SIGTERM to a helper's process group and waits (bounded).
func stopProc(c *exec.Cmd) {
	syscallKillGroup(c, "TERM")
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscallKillGroup(c, "KILL")
		<-done
	}
}

// finalRelayBytes waits for a relay helper stats line with no open
// connection and returns its byte count.
func finalRelayBytes(t *testing.T, path string) int64 {
	t.Helper()
	return waitRelayIdle(t, path, relayStatsRe, 1, 3)
}

// waitRelayIdle waits (at most 20 s) until the last line of the log at path
// matching re has "0" in submatch conns, and returns submatch bytes.
func waitRelayIdle(t *testing.T, path string, re *regexp.Regexp, conns, bytes int) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		ms := re.FindAllStringSubmatch(string(b), -1)
		if n := len(ms); n > 0 && ms[n-1][conns] == "0" {
			v, _ := strconv.ParseInt(ms[n-1][bytes], 10, 64)
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the relay never reported zero open connections", filepath.Base(path))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// helperShoalPeer runs a shoal peer with hole punching enabled:
// SHOAL_NAT_ROLE=seed (behind NAT, through the relay, until SIGTERM) or
// get (until the download completes and the punch has an outcome).
func helperShoalPeer() int {
	ctx, cancel := helperContext()
	defer cancel()
	role := os.Getenv("SHOAL_NAT_ROLE")
	c, tor, err := helperPeer(ctx, session.Config{Logger: helperLog(), Rendezvous: punchRendezvous})
	if err != nil {
		fmt.Println(role+":", err)
		return 1
	}
	report := func() {
		s := c.PunchStats()
		fmt.Printf("shoal punch stats attempts=%d successes=%d fallbacks=%d direct=%d\n", s.Attempts, s.Successes, s.Fallbacks, s.Direct)
	}
	if role == "seed" {
		if _, err := c.UseRelays(ctx, []string{relayMain}, true); err != nil {
			fmt.Println("seed:", err)
			return 1
		}
		<-ctx.Done()
		<-tor.Stopped()
		report()
		return 0
	}
	select {
	case <-tor.Done():
		fmt.Println("shoal get: download complete")
	case <-ctx.Done():
		return 1
	case <-time.After(140 * time.Second):
		fmt.Println("shoal get: timed out")
		return 1
	}
	// the upgrade may still be running (a failing punch takes its rounds)
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		if s := c.PunchStats(); s.Successes > 0 || s.Fallbacks > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	report()
	cancel()
	<-tor.Stopped()
	return 0
}

// helperPeer starts a shoal client with cfg listening on SHOAL_NAT_LISTEN,
// adds the torrent SHOAL_NAT_TORRENT with data in SHOAL_NAT_DATA, and
// accepts peers until ctx ends.
func helperPeer(ctx context.Context, cfg session.Config) (*session.Client, *session.Torrent, error) {
	mi, err := metainfo.Load(os.Getenv("SHOAL_NAT_TORRENT"))
	if err != nil {
		return nil, nil, err
	}
	cfg.Listen = os.Getenv("SHOAL_NAT_LISTEN")
	c, err := session.NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	tor, err := c.Add(ctx, mi, session.Options{Root: os.Getenv("SHOAL_NAT_DATA")})
	if err != nil {
		return nil, nil, err
	}
	go c.Run(ctx)
	return c, tor, nil
}

// punchSwarm prepares what both hole-punch lab tests share: a scratch dir
// (world-readable: opentracker drops to nobody), a seeder folder with a
// deterministic payload, a download folder, the payload's .torrent, and
// opentracker on the public host with that torrent whitelisted.
func punchSwarm(t *testing.T, l *lab, prefix string, seed byte, mode string) (seedDir, outDir, torrent string, data []byte) {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	seedDir, outDir = filepath.Join(dir, "seed"), filepath.Join(dir, "down")
	os.MkdirAll(seedDir, 0o755)
	os.MkdirAll(outDir, 0o755)
	data = make([]byte, shoalPunchSize)
	rand.NewChaCha8([32]byte{seed, byte(mode[0])}).Read(data)
	if err := os.WriteFile(filepath.Join(seedDir, "payload.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, raw, err := metainfo.Create(context.Background(), metainfo.CreateOptions{
		Path: filepath.Join(seedDir, "payload.bin"), Trackers: []string{trackerURL}, PieceLength: shoalPunchPiece,
	})
	if err != nil {
		t.Fatal(err)
	}
	torrent = filepath.Join(dir, "payload.torrent")
	os.WriteFile(torrent, raw, 0o644)
	os.WriteFile(filepath.Join(dir, "whitelist.txt"), []byte(fmt.Sprintf("%x\n", mi.InfoHash[:])), 0o644)
	l.startOpentracker(dir)
	return seedDir, outDir, torrent, data
}
