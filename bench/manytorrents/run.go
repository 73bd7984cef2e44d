package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/procstat"
	"github.com/shoal-p2p/shoal/internal/session"
)

const tailSize = 16 << 10 // tail.bin: one piece the leechers skip (see the package doc)

// run is the parent: make the torrents, start the seeder child, run the
// leechers, measure, and end everything it started.
func run(ctx context.Context, o options) (err error) {
	dir := o.dir
	if dir == "" {
		base := os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
		if dir, err = os.MkdirTemp(base, "shoal-many-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	t0 := time.Now()
	mis, err := makeTorrents(ctx, dir, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "made %d torrents of %d bytes in %s (%.1fs)\n", len(mis), o.size+tailSize, dir, time.Since(t0).Seconds())

	if o.resume {
		// a first seeder hashes the data and, at its clean stop, writes
		// resume records; the measured seeder below then trusts them
		t1 := time.Now()
		sd0, err := startSeeder(ctx, dir)
		if err != nil {
			return err
		}
		_, err = sd0.waitReady(ctx)
		if serr := sd0.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("first seeder run: %w", err)
		}
		recs, _ := filepath.Glob(filepath.Join(dir, "data", ".shoal", "*.resume"))
		fmt.Fprintf(os.Stderr, "first seeder run wrote %d resume records (%.2fs)\n", len(recs), time.Since(t1).Seconds())
	}
	sd, err := startSeeder(ctx, dir)
	if err != nil {
		return err
	}
	defer func() {
		if serr := sd.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	t1 := time.Now()
	addr, err := sd.waitReady(ctx)
	if err != nil {
		return err
	}
	port, err := portOf(addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seeder pid %d ready on %s (%.2fs to add and check %d torrents)\n", sd.cmd.Process.Pid, addr, time.Since(t1).Seconds(), len(mis))
	idle, err := procstat.Read(sd.cmd.Process.Pid)
	if err != nil {
		return err
	}
	idleStats := sd.stats(ctx)

	// the leechers, in this process: they do not count in the seeder's RSS
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var peakDuring int64 // written by the sampler goroutine, read after sampled is closed
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := procstat.Read(sd.cmd.Process.Pid); err == nil {
				peakDuring = max(peakDuring, m.RSS)
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t2 := time.Now()
	ls, err := runLeechers(lctx, dir, addr, mis, o)
	stopSampling()
	<-sampled
	defer stopLeechers(lcancel, ls)
	if err != nil {
		return err
	}
	dl := time.Since(t2)
	if err := checkCopies(dir, mis, ls); err != nil {
		return err
	}
	// let the engines' once-a-second stats refresh and any teardown of
	// finished transfers happen, then check every connection is still open
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.settle):
	}
	conns, err := waitConns(ctx, port, o.peers)
	if err != nil {
		return err
	}
	m, err := procstat.Read(sd.cmd.Process.Pid)
	if err != nil {
		return err
	}
	st := sd.stats(ctx)
	verdict := "ok"
	if mib(m.RSS) > o.limitMiB || mib(m.HWM) > o.limitMiB {
		verdict = "over"
	}
	start := "fresh"
	if o.resume {
		start = "resumed"
	}
	fmt.Printf("torrents=%d peers=%d seeder_rss_mib=%.1f seeder_hwm_mib=%.1f limit=%g verdict=%s start=%s piece_kib=%d\n",
		len(mis), conns, mib(m.RSS), mib(m.HWM), o.limitMiB, verdict, start, o.piece>>10)
	fmt.Printf("  now:              rss=%.1f anon=%.1f file=%.1f shmem=%.1f MiB\n", mib(m.RSS), mib(m.Anon), mib(m.File), mib(m.Shmem))
	fmt.Printf("  before any peer:  rss=%.1f hwm=%.1f MiB (after adding %d torrents)\n", mib(idle.RSS), mib(idle.HWM), len(mis))
	fmt.Printf("  while serving:    rss peak=%.1f MiB (sampled every 100 ms); %d leechers got %.0f MiB in %.2fs\n",
		mib(peakDuring), len(ls), float64(int64(len(ls))*o.size)/(1<<20), dl.Seconds())
	fmt.Printf("  seeder idle %s\n", idleStats)
	fmt.Printf("  seeder now  %s\n", st)
	if o.heapProfile != "" {
		abs, err := filepath.Abs(o.heapProfile)
		if err != nil {
			return err
		}
		fmt.Printf("  heap profile of the seeder (after a GC) in %s: %s\n", abs, sd.ask(ctx, "heapprofile "+abs, "heapprofile "))
	}
	return nil
}

// makeTorrents writes DIR/data/tNNN/{data.bin,tail.bin} of random bytes and
// DIR/torrents/tNNN.torrent for each, and returns the parsed torrents.
func makeTorrents(ctx context.Context, dir string, o options) ([]*metainfo.MetaInfo, error) {
	if err := os.MkdirAll(filepath.Join(dir, "torrents"), 0o755); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	mis := make([]*metainfo.MetaInfo, 0, o.torrents)
	for i := 0; i < o.torrents; i++ {
		name := fmt.Sprintf("t%03d", i)
		folder := filepath.Join(dir, "data", name)
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return nil, err
		}
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(i)+uint64(time.Now().UnixNano()))
		rng := rand.NewChaCha8(seed)
		if err := writeRandom(filepath.Join(folder, "data.bin"), o.size, rng, buf); err != nil {
			return nil, err
		}
		if err := writeRandom(filepath.Join(folder, "tail.bin"), tailSize, rng, buf); err != nil {
			return nil, err
		}
		mi, data, err := metainfo.Create(ctx, metainfo.CreateOptions{Path: folder, PieceLength: o.piece, CreatedBy: "bench/manytorrents", NoDate: true})
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "torrents", name+".torrent"), data, 0o644); err != nil {
			return nil, err
		}
		mis = append(mis, mi)
	}
	return mis, nil
}

func writeRandom(path string, n int64, rng *rand.ChaCha8, buf []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		rng.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		n -= int64(len(b))
	}
	return f.Close()
}

// seederProc is the running seeder child. cmd and stdin are static after
// startSeeder; lines is fed by one reader goroutine and closed at EOF.
type seederProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	mu    sync.Mutex // serialises stats requests
}

func startSeeder(ctx context.Context, dir string) (*seederProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	timeout := time.Hour
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl) + 5*time.Second // the parent ends it first
	}
	cmd := exec.Command(exe, "-role", "seeder", "-dir", dir, "-timeout", timeout.String())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive us
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start seeder: %w", err)
	}
	s := &seederProc{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s, nil
}

func (s *seederProc) waitReady(ctx context.Context) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("seeder not ready: %w", ctx.Err())
		case l, ok := <-s.lines:
			if !ok {
				return "", errors.New("seeder exited before it was ready")
			}
			if a, ok := strings.CutPrefix(l, "ready "); ok {
				return a, nil
			}
		}
	}
}

// stats asks the child for its runtime figures (waits at most 5 s).
func (s *seederProc) stats(ctx context.Context) string { return s.ask(ctx, "stats", "stats ") }

// ask sends the child one command line and returns the rest of its answer,
// the first line that starts with prefix (waits at most 5 s).
func (s *seederProc) ask(ctx context.Context, cmd, prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.stdin, cmd+"\n"); err != nil {
		return "(no answer: " + err.Error() + ")"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return "(no answer: timeout)"
		case l, ok := <-s.lines:
			if !ok {
				return "(no answer: seeder exited)"
			}
			if r, ok := strings.CutPrefix(l, prefix); ok {
				return r
			}
		}
	}
}

// stop asks the child to quit, waits up to 5 s, then kills it by PID.
func (s *seederProc) stop() error {
	io.WriteString(s.stdin, "quit\n")
	s.stdin.Close()
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("seeder: %w", err)
		}
		return nil
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-exited
		return errors.New("seeder did not stop within 5 s; killed")
	}
}

func portOf(addr string) (uint16, error) {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("seeder address %q has no port", addr)
	}
	return uint16(p), nil
}

// leecher is one downloading client; static after runLeechers.
type leecher struct {
	client *session.Client
	t      *session.Torrent
	k      int // index of its torrent
	root   string
}

// runLeechers starts o.peers clients, leecher i on torrent i*torrents/peers,
// and waits until each has every piece but tail.bin's. The leechers keep
// running (connected) until ctx ends.
func runLeechers(ctx context.Context, dir, seeder string, mis []*metainfo.MetaInfo, o options) ([]*leecher, error) {
	discard := slog.New(slog.DiscardHandler)
	var ls []*leecher
	for i := 0; i < o.peers; i++ {
		k := i * len(mis) / o.peers
		c, err := session.NewClient(session.Config{Listen: "127.0.0.1:0", Logger: discard})
		if err != nil {
			return ls, fmt.Errorf("leecher %d: %w", i, err)
		}
		go c.Run(ctx)
		prios := make([]int, len(mis[k].Info.Files))
		for j, f := range mis[k].Info.Files {
			if f.Path[len(f.Path)-1] != "tail.bin" {
				prios[j] = session.FileNormal
			}
		}
		root := filepath.Join(dir, "leech", strconv.Itoa(i))
		t, err := c.Add(ctx, mis[k], session.Options{Root: root, Peers: []string{seeder}, NoTrackers: true, FilePriorities: prios})
		if err != nil {
			return ls, fmt.Errorf("leecher %d: %w", i, err)
		}
		ls = append(ls, &leecher{client: c, t: t, k: k, root: root})
	}
	for i, l := range ls {
		select {
		case <-l.t.Done():
		case <-l.t.Stopped():
			return ls, fmt.Errorf("leecher %d stopped: %v", i, l.t.Stats().Err)
		case <-ctx.Done():
			st := l.t.Stats()
			return ls, fmt.Errorf("leecher %d: %d of %d pieces when time ran out: %w", i, st.Have, st.NumPieces, ctx.Err())
		}
	}
	return ls, nil
}

func stopLeechers(cancel context.CancelFunc, ls []*leecher) {
	cancel()
	deadline := time.After(5 * time.Second)
	for _, l := range ls {
		select {
		case <-l.t.Stopped():
		case <-deadline:
			return
		}
	}
}

// checkCopies compares every leecher's data.bin with the original.
func checkCopies(dir string, mis []*metainfo.MetaInfo, ls []*leecher) error {
	for i, l := range ls {
		name := mis[l.k].Info.Name
		want, err := os.ReadFile(filepath.Join(dir, "data", name, "data.bin"))
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(l.root, name, "data.bin"))
		if err != nil {
			return fmt.Errorf("leecher %d: %w", i, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("leecher %d: %s/data.bin differs from the original", i, name)
		}
	}
	return nil
}

// waitConns waits (up to 10 s) until the seeder's port has want established
// connections, and returns the count.
func waitConns(ctx context.Context, port uint16, want int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		n, err := establishedOn(port)
		if err != nil {
			return 0, err
		}
		if n == want {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("seeder has %d established connections, want %d", n, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
