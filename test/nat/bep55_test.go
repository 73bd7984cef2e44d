package nat

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/session"
)

// BEP 55 ut_holepunch between two NATed shoal leechers, introduced by a
// public shoal seeder they are both connected to (no relay, no rendezvous
// server). The punching lab of punch_test.go:
//
//	P  198.18.100.10  opentracker :6969, shoal seeder S :6881 (upload 512 KiB/s)
//	A  100.64.1.2 behind RA (198.18.100.1), shoal leecher, PunchPeers
//	B  100.64.2.2 behind RB (198.18.100.2), shoal leecher, PunchPeers
//
// The tracker gives each leecher the other's public address; the dial fails
// (the NATs drop it), so the leecher asks S for a rendezvous; S sends both
// a connect, and both dial from their listen port at once. With
// port-preserving NATs this TCP simultaneous open connects A and B directly
// and they trade pieces; with --random masquerade it fails and both finish
// from S alone.
const (
	bep55SeedRate = 512 << 10
)

func TestBEP55HolePunchBetweenNATedPeers(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/usr/bin/opentracker"); err != nil {
		t.Skip("needs opentracker")
	}
	for _, mode := range []string{"plain", "random"} {
		t.Run(mode, func(t *testing.T) {
			l := newPunchLab(t, mode)
			seedDir, _, torrent, data := punchSwarm(t, l, "shoal-bep55-", 55, mode)
			_, seedLog := l.start("P", "seeder", []string{"SHOAL_NAT_HELPER=bep55-peer", "SHOAL_NAT_ROLE=seed",
				"SHOAL_NAT_LISTEN=" + relayIP + ":6881", "SHOAL_NAT_TORRENT=" + torrent, "SHOAL_NAT_DATA=" + seedDir,
				"SHOAL_NAT_UPRATE=" + strconv.Itoa(bep55SeedRate)}, self)
			waitLog(t, seedLog, "msg=announced", 30*time.Second) // the tracker lists the seeder to the leechers
			type leecher struct {
				ns, ip, wan, out, log string
				done                  chan error
			}
			ls := []*leecher{{ns: "A", ip: seederIP, wan: routerWAN}, {ns: "B", ip: punchBIP, wan: "198.18.100.2"}}
			for _, lc := range ls {
				lc.out = filepath.Join(filepath.Dir(seedDir), "down-"+lc.ns)
				os.MkdirAll(lc.out, 0o755)
				c, logPath := l.start(lc.ns, "leecher-"+lc.ns, []string{"SHOAL_NAT_HELPER=bep55-peer", "SHOAL_NAT_ROLE=get",
					"SHOAL_NAT_LISTEN=" + lc.ip + ":6881", "SHOAL_NAT_TORRENT=" + torrent, "SHOAL_NAT_DATA=" + lc.out}, self)
				lc.log, lc.done = logPath, make(chan error, 1)
				go func() { lc.done <- c.Wait() }()
			}
			for _, lc := range ls {
				select {
				case err := <-lc.done:
					if err != nil {
						b, _ := os.ReadFile(lc.log)
						t.Fatalf("leecher %s failed: %v\n%s", lc.ns, err, lastLines(string(b), 20))
					}
				case <-time.After(150 * time.Second):
					t.Fatalf("leecher %s still running after 150 s", lc.ns)
				}
				got, err := os.ReadFile(filepath.Join(lc.out, "payload.bin"))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("leecher %s: downloaded content differs (%v)", lc.ns, err)
				}
			}
			// what each leecher got from the other's public address
			var direct [2]int64
			var stats [2]session.PunchStats
			for i, lc := range ls {
				b, _ := os.ReadFile(lc.log)
				line := firstLine(string(b), "bep55 stats ")
				if _, err := fmt.Sscanf(line, "bep55 stats requests=%d relayed=%d attempts=%d successes=%d fallbacks=%d",
					&stats[i].HolepunchRequests, &stats[i].HolepunchRelayed, &stats[i].HolepunchAttempts,
					&stats[i].HolepunchSuccesses, &stats[i].HolepunchFallbacks); err != nil {
					t.Fatalf("leecher %s output %q: %v", lc.ns, line, err)
				}
				other := ls[1-i].wan
				for _, ln := range strings.Split(string(b), "\n") {
					var addr string
					var n int64
					if _, err := fmt.Sscanf(ln, "bep55 from %s %d", &addr, &n); err == nil {
						if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().String() == other {
							direct[i] += n
						}
					}
				}
				t.Logf("%s %s: ut_holepunch %+v; %d of %d bytes came directly from the other NATed peer", mode, lc.ns, stats[i], direct[i], len(data))
			}
			switch mode {
			case "plain":
				if stats[0].HolepunchSuccesses+stats[1].HolepunchSuccesses == 0 {
					t.Fatalf("port-preserving NATs: no punched connection (A %+v, B %+v)", stats[0], stats[1])
				}
				if direct[0]+direct[1] < int64(len(data))/4 {
					t.Fatalf("the leechers traded only %d bytes directly", direct[0]+direct[1])
				}
			case "random":
				if stats[0].HolepunchSuccesses+stats[1].HolepunchSuccesses != 0 || direct[0]+direct[1] != 0 {
					t.Fatalf("random NATs: want no direct connection (A %+v, B %+v, direct %v)", stats[0], stats[1], direct)
				}
				if stats[0].HolepunchFallbacks+stats[1].HolepunchFallbacks == 0 {
					t.Fatalf("random NATs: no failed punch counted (A %+v, B %+v)", stats[0], stats[1])
				}
			}
		})
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// helperBEP55Peer runs a shoal peer with ut_holepunch punching from its
// listen port: SHOAL_NAT_ROLE=seed (until SIGTERM) or get (until the
// download completes). A getter prints its BEP 55 counters and the bytes it
// downloaded from each peer address ("bep55 from ADDR N").
func helperBEP55Peer() int {
	ctx, cancel := helperContext()
	defer cancel()
	role := os.Getenv("SHOAL_NAT_ROLE")
	up, _ := strconv.ParseInt(os.Getenv("SHOAL_NAT_UPRATE"), 10, 64)
	log := slog.New(noTicks{slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})})
	c, tor, err := helperPeer(ctx, session.Config{Logger: log, PunchPeers: true, UploadRate: up})
	if err != nil {
		fmt.Println(role+":", err)
		return 1
	}
	if role == "seed" {
		<-ctx.Done()
		<-tor.Stopped()
		return 0
	}
	from := map[netip.AddrPort]int64{} // most seen per address (connections end when both are done)
	sample := func() {
		for _, p := range tor.Peers() {
			from[p.Addr] = max(from[p.Addr], p.Downloaded)
		}
	}
	deadline := time.After(140 * time.Second)
loop:
	for {
		select {
		case <-tor.Done():
			sample()
			break loop
		case <-ctx.Done():
			return 1
		case <-deadline:
			fmt.Println("get: timed out")
			return 1
		case <-time.After(100 * time.Millisecond):
			sample()
		}
	}
	fmt.Println("get: download complete")
	s := c.PunchStats()
	fmt.Printf("bep55 stats requests=%d relayed=%d attempts=%d successes=%d fallbacks=%d\n",
		s.HolepunchRequests, s.HolepunchRelayed, s.HolepunchAttempts, s.HolepunchSuccesses, s.HolepunchFallbacks)
	for a, n := range from {
		fmt.Printf("bep55 from %s %d\n", a, n)
	}
	cancel()
	<-tor.Stopped()
	return 0
}

// noTicks drops the engine's once-a-second debug line, keeping the rest.
type noTicks struct{ slog.Handler }

func (h noTicks) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "tick" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h noTicks) WithAttrs(as []slog.Attr) slog.Handler { return noTicks{h.Handler.WithAttrs(as)} }
func (h noTicks) WithGroup(g string) slog.Handler       { return noTicks{h.Handler.WithGroup(g)} }
