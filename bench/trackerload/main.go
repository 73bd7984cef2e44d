// Command trackerload fires BEP 15 UDP announces at a tracker on loopback
// over many simulated swarms and peers, and reports announces per second and
// the tracker's peak memory (VmHWM of --pid).
//
// Phases: (1) fill: every simulated peer announces "started" once, so the
// tracker holds torrents x peers entries; (2) steady: random peers
// re-announce for --duration; (3) a scrape of every torrent counts the peers
// the tracker really holds. Info-hashes are SHA-1("trackerload-<i>"), so
// --write-hashes can produce a whitelist (opentracker) beforehand.
//
// Every worker keeps --window requests in flight on its own socket; a
// request with no answer for 300 ms is counted lost and replaced.
//
// Only loopback targets are accepted.
package main

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/procstat"
)

type config struct {
	target      netip.AddrPort
	torrents    int
	peers       int // per torrent
	seederPct   int
	numWant     int
	duration    time.Duration
	workers     int
	window      int
	pid         int
	writeHashes string
	label       string
}

func main() {
	var c config
	target := flag.String("target", "127.0.0.1:6969", "tracker UDP address (loopback only)")
	flag.IntVar(&c.torrents, "torrents", 10000, "simulated swarms")
	flag.IntVar(&c.peers, "peers", 20, "simulated peers per swarm (<= 60000)")
	flag.IntVar(&c.seederPct, "seeders", 20, "percent of peers that are seeders")
	flag.IntVar(&c.numWant, "numwant", 50, "numwant in every announce")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "steady phase length")
	flag.IntVar(&c.workers, "workers", 2, "sockets sending in parallel")
	flag.IntVar(&c.window, "window", 64, "requests in flight per worker")
	flag.IntVar(&c.pid, "pid", 0, "tracker PID for memory figures (/proc/PID/status)")
	flag.StringVar(&c.writeHashes, "write-hashes", "", "write the info-hashes (hex, one a line) to this file and exit")
	flag.StringVar(&c.label, "label", "tracker", "name printed in the result line")
	flag.Parse()
	if err := run(c, *target); err != nil {
		fmt.Fprintln(os.Stderr, "trackerload:", err)
		os.Exit(1)
	}
}

func infoHash(i int) [20]byte { return sha1.Sum([]byte("trackerload-" + strconv.Itoa(i))) }

func run(c config, target string) error {
	if c.torrents <= 0 || c.peers <= 0 || c.peers > 60000 || c.workers <= 0 || c.window <= 0 {
		return errors.New("torrents, peers (<= 60000), workers and window must be positive")
	}
	if c.writeHashes != "" {
		var b strings.Builder
		for i := range c.torrents {
			h := infoHash(i)
			b.WriteString(hex.EncodeToString(h[:]) + "\n")
		}
		return os.WriteFile(c.writeHashes, []byte(b.String()), 0o644)
	}
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("--target %v is not a loopback address", ap)
	}
	c.target = ap
	hashes := make([][20]byte, c.torrents)
	for i := range hashes {
		hashes[i] = infoHash(i)
	}
	base := memKB(c.pid, false)

	total := c.torrents * c.peers
	var next atomic.Int64
	fill := phase(c, hashes, func(r *rand.Rand) (int, bool) {
		k := int(next.Add(1) - 1)
		return k, k < total
	}, 2)
	steady := phase(c, hashes, func(r *rand.Rand) (int, bool) { return r.IntN(total), true }, 0)
	held, err := scrapeAll(c, hashes)
	if err != nil {
		return err
	}
	hwm := memKB(c.pid, true)
	fmt.Printf("%s: fill %d announces in %.2fs = %.0f/s (lost %d, errors %d)\n", c.label, fill.ok, fill.secs, fill.rate(), fill.lost, fill.errs)
	fmt.Printf("%s: steady %d announces in %.2fs = %.0f/s (lost %d, errors %d)\n", c.label, steady.ok, steady.secs, steady.rate(), steady.lost, steady.errs)
	perPeer := 0.0
	if held > 0 && hwm > 0 {
		perPeer = float64(hwm-base) * 1024 / float64(held)
	}
	fmt.Printf("%s: peers held (scrape) %d of %d; RSS before %d KiB, peak %d KiB; %.1f bytes/peer\n", c.label, held, total, base, hwm, perPeer)
	fmt.Printf("RESULT label=%s announces_per_sec=%.0f fill_per_sec=%.0f peers=%d peak_kib=%d base_kib=%d bytes_per_peer=%.1f lost=%d\n",
		c.label, steady.rate(), fill.rate(), held, hwm, base, perPeer, steady.lost+fill.lost)
	return nil
}

type result struct {
	ok, lost, errs int64
	secs           float64
}

func (r result) rate() float64 {
	if r.secs == 0 {
		return 0
	}
	return float64(r.ok) / r.secs
}

// phase runs the workers until pick says stop (fill) or --duration passes
// (steady, when event is 0). pick returns a global peer index.
func phase(c config, hashes [][20]byte, pick func(*rand.Rand) (int, bool), event uint32) result {
	var ok, lost, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(c.duration)
	if event != 0 {
		deadline = start.Add(10 * time.Minute) // fill: bounded anyway
	}
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			o, l, e, err := worker(c, hashes, r, pick, event, deadline)
			if err != nil {
				fmt.Fprintln(os.Stderr, "trackerload: worker:", err)
			}
			ok.Add(o)
			lost.Add(l)
			errs.Add(e)
		}()
	}
	wg.Wait()
	return result{ok: ok.Load(), lost: lost.Load(), errs: errs.Load(), secs: time.Since(start).Seconds()}
}

const lossTimeout = 300 * time.Millisecond

func connect(conn *net.UDPConn) (uint64, error) {
	req := binary.BigEndian.AppendUint64(nil, 0x41727101980)
	req = binary.BigEndian.AppendUint32(req, 0)
	req = binary.BigEndian.AppendUint32(req, 0xc0ffee)
	buf := make([]byte, 64)
	for try := 0; try < 10; try++ {
		if _, err := conn.Write(req); err != nil {
			return 0, err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			if n >= 16 && binary.BigEndian.Uint32(buf) == 0 && binary.BigEndian.Uint32(buf[4:]) == 0xc0ffee {
				return binary.BigEndian.Uint64(buf[8:]), nil
			}
		}
	}
	return 0, errors.New("no answer to connect")
}

func worker(c config, hashes [][20]byte, r *rand.Rand, pick func(*rand.Rand) (int, bool), event uint32, deadline time.Time) (ok, lost, errs int64, err error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.target))
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	id, err := connect(conn)
	if err != nil {
		return 0, 0, 0, err
	}
	connAt := time.Now()
	pkt := make([]byte, 98)
	in := make([]byte, 2048)
	inflight := 0
	var tid uint32
	done := false
	for {
		if time.Since(connAt) > 50*time.Second {
			if id, err = connect(conn); err != nil {
				return ok, lost, errs, err
			}
			connAt = time.Now()
			lost += int64(inflight) // answers to old requests were swallowed by connect
			inflight = 0
		}
		for !done && inflight < c.window {
			if time.Now().After(deadline) {
				done = true
				break
			}
			k, more := pick(r)
			if !more {
				done = true
				break
			}
			t, p := k/c.peers, k%c.peers
			tid++
			binary.BigEndian.PutUint64(pkt[0:], id)
			binary.BigEndian.PutUint32(pkt[8:], 1)
			binary.BigEndian.PutUint32(pkt[12:], tid)
			copy(pkt[16:36], hashes[t][:])
			copy(pkt[36:44], "-TL0001-")
			binary.BigEndian.PutUint64(pkt[44:], uint64(k))
			binary.BigEndian.PutUint32(pkt[52:], 0)
			left := uint64(1 << 20)
			if p%100 < c.seederPct {
				left = 0
			}
			binary.BigEndian.PutUint64(pkt[56:], 0)
			binary.BigEndian.PutUint64(pkt[64:], left)
			binary.BigEndian.PutUint64(pkt[72:], 0)
			binary.BigEndian.PutUint32(pkt[80:], event)
			binary.BigEndian.PutUint32(pkt[84:], 0)
			binary.BigEndian.PutUint32(pkt[88:], uint32(k))
			binary.BigEndian.PutUint32(pkt[92:], uint32(c.numWant))
			binary.BigEndian.PutUint16(pkt[96:], uint16(1024+p))
			if _, err := conn.Write(pkt); err != nil {
				return ok, lost, errs, err
			}
			inflight++
		}
		if inflight == 0 {
			return ok, lost, errs, nil
		}
		conn.SetReadDeadline(time.Now().Add(lossTimeout))
		n, rerr := conn.Read(in)
		if rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				lost += int64(inflight)
				inflight = 0
				continue
			}
			return ok, lost, errs, rerr
		}
		if n >= 8 {
			switch binary.BigEndian.Uint32(in) {
			case 1:
				ok++
				inflight--
			case 3:
				errs++
				inflight--
			}
		}
	}
}

// scrapeAll asks for every torrent's counts and returns the peer total.
func scrapeAll(c config, hashes [][20]byte) (int, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.target))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	id, err := connect(conn)
	if err != nil {
		return 0, err
	}
	total := 0
	in := make([]byte, 2048)
	for i := 0; i < len(hashes); i += 64 {
		batch := hashes[i:min(i+64, len(hashes))]
		req := binary.BigEndian.AppendUint64(nil, id)
		req = binary.BigEndian.AppendUint32(req, 2)
		req = binary.BigEndian.AppendUint32(req, uint32(i))
		for _, h := range batch {
			req = append(req, h[:]...)
		}
		got := false
		for try := 0; try < 5 && !got; try++ {
			conn.Write(req)
			conn.SetReadDeadline(time.Now().Add(time.Second))
			for {
				n, err := conn.Read(in)
				if err != nil {
					break
				}
				if n == 8+12*len(batch) && binary.BigEndian.Uint32(in) == 2 && binary.BigEndian.Uint32(in[4:]) == uint32(i) {
					for j := range batch {
						off := 8 + 12*j
						total += int(binary.BigEndian.Uint32(in[off:]) + binary.BigEndian.Uint32(in[off+8:]))
					}
					got = true
					break
				}
			}
		}
		if !got {
			return total, fmt.Errorf("scrape of torrents %d..: no answer", i)
		}
	}
	return total, nil
}

// memKB reads pid's current (VmRSS) or peak (VmHWM) resident KiB, 0 if
// unknown (no --pid, or the process is gone).
func memKB(pid int, peak bool) int {
	if pid <= 0 {
		return 0
	}
	m, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	if peak {
		return int(m.HWM)
	}
	return int(m.RSS)
}
