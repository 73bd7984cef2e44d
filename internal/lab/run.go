package lab

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

//go:embed lt_peer.py
var ltPeerScript []byte

const (
	fileName    = "lab.bin"
	trackerPort = 6969
	peerPort    = 6881
	httpPort    = 8000
	stopGrace   = 3 * time.Second
)

// AnnounceURL is the tracker the lab's torrents name.
var AnnounceURL = "http://" + ServerAddr.String() + ":" + strconv.Itoa(trackerPort) + "/announce"

// Run performs one measurement: it builds the namespaces, starts the
// tracker and seeder (or HTTP server) on the server host and one client on
// each peer host, gives the go signal, waits until every staying peer holds
// the verified file, checks every copy byte for byte, and removes
// everything it created before returning, also when ctx is cancelled
// (SIGINT/SIGTERM) or a step fails. Needs root.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	b, err := cfg.Bounds()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("shoal lab needs root (network namespaces, tc, tmpfs)")
	}
	if cfg.Exe == "" {
		if cfg.Exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("lab: own executable: %w", err)
		}
	}
	if cfg.Timeout == 0 {
		bound := b.DP2P
		if cfg.Clients == ClientsHTTP {
			bound = b.DCS
		}
		cfg.Timeout = time.Duration((10*bound + 60) * float64(time.Second))
	}
	start := time.Now()
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join("/tmp/shoal-lab-logs", fmt.Sprintf("%s-%s-n%d-%d", NSPrefix+strconv.Itoa(os.Getpid()), cfg.Clients, cfg.N, start.Unix()))
	}
	if cfg.ProfileDir != "" {
		dir, err := filepath.Abs(cfg.ProfileDir) // the processes run elsewhere
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return nil, fmt.Errorf("lab: profile folder: %w", err)
		}
		cfg.ProfileDir = dir
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: log folder: %w", err)
	}
	r := &run{cfg: &cfg, bounds: b, logf: func(format string, a ...any) {
		fmt.Fprintf(cfg.Log, "lab: "+format+"\n", a...)
	}}
	defer r.teardown()
	res, err := r.do(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (logs: %s)", err, cfg.LogDir)
	}
	res.StartedUnixS = start.Unix()
	if j, err := json.MarshalIndent(res, "", "  "); err == nil {
		os.WriteFile(filepath.Join(cfg.LogDir, "result.json"), j, 0o644)
	}
	return res, nil
}

// run is the state of one measurement; owned by Run's goroutine.
type run struct {
	cfg     *Config
	bounds  Bounds
	logf    func(string, ...any)
	data    string // tmpfs mount, "" until mounted
	net     *Net
	ps      procs
	peers   []*proc
	leaving map[int]bool // peer index (0-based) -> killed mid-run
}

func (r *run) teardown() {
	r.ps.stopAll(stopGrace)
	if r.net != nil {
		if err := r.net.Close(); err != nil {
			r.logf("cleanup: %v", err)
		}
	}
	if r.data != "" {
		if err := unmountData(r.data); err != nil {
			r.logf("cleanup: %v", err)
		}
	}
}

func (r *run) do(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	var err error
	if r.data, err = mountData(cfg.FileBytes*int64(cfg.N+2) + 64<<20); err != nil {
		return nil, err
	}
	src := filepath.Join(r.data, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	srcFile := filepath.Join(src, fileName)
	want, err := writeRandomFile(srcFile, cfg.FileBytes, uint64(cfg.FileBytes))
	if err != nil {
		return nil, fmt.Errorf("lab: test file: %w", err)
	}
	torrent := filepath.Join(r.data, "lab.torrent")
	var mi *metainfo.MetaInfo
	if cfg.Clients != ClientsHTTP {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		out, err := exec.CommandContext(cctx, cfg.Exe, "create", "-t", AnnounceURL, "--piece-length", strconv.FormatInt(cfg.PieceBytes, 10),
			"--no-date", "-o", torrent, srcFile).CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("lab: shoal create: %w: %s", err, strings.TrimSpace(string(out)))
		}
		if mi, err = metainfo.Load(torrent); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	script := filepath.Join(r.data, "lt_peer.py")
	if err := os.WriteFile(script, ltPeerScript, 0o644); err != nil {
		return nil, err
	}

	r.logf("namespaces: 1 bridge, 1 server, %d peers (%s-*)", cfg.N, NSPrefix+strconv.Itoa(os.Getpid()))
	if r.net, err = Setup(ctx, cfg); err != nil {
		return nil, err
	}
	lines := make(chan lineEvent, 4*cfg.N+16)
	logPath := func(name string) string { return filepath.Join(r.cfg.LogDir, name+".log") }
	profile := func(name string) []string {
		if cfg.ProfileDir == "" {
			return nil
		}
		return []string{"--cpuprofile", filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-n%d-%s.pprof", cfg.Clients, cfg.N, name))}
	}
	sAddr := ServerAddr.String()

	// Server host.
	if cfg.Clients == ClientsHTTP {
		p, err := r.ps.start("http-server", r.net.Server, []string{cfg.Exe, "lab", "http-serve", "--listen", sAddr + ":" + strconv.Itoa(httpPort), "--file", srcFile}, nil, logPath("server"), lines)
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, lines, []*proc{p}, 30*time.Second); err != nil {
			return nil, fmt.Errorf("lab: HTTP server: %w", err)
		}
	} else {
		if _, err := r.ps.start("tracker", r.net.Server, []string{cfg.Exe, "tracker", "--http", sAddr + ":" + strconv.Itoa(trackerPort), "--udp", "", "--interval", "10s", "--rate-limit", "0"}, nil, logPath("tracker"), nil); err != nil {
			return nil, err
		}
		listen := sAddr + ":" + strconv.Itoa(peerPort)
		argv := []string{cfg.Exe, "seed", "--listen", listen, "-d", src, "--no-dht", torrent}
		if cfg.Debug && cfg.Seeder != ClientsLibtorrent {
			argv = append(argv, "-vv")
		}
		argv = append(argv, profile("seeder")...)
		if cfg.Seeder == ClientsLibtorrent {
			argv = []string{cfg.Python, script, "--listen", listen, "--torrent", torrent, "--save", src, "--seed"}
		}
		if _, err := r.ps.start("seeder", r.net.Server, argv, nil, logPath("seeder"), nil); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		out, err := exec.CommandContext(wctx, "ip", "netns", "exec", r.net.Server, cfg.Exe, "lab", "wait-seeded",
			"--announce", AnnounceURL, "--info-hash", mi.InfoHash.String(), "--timeout", "90s").CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("lab: seeder never registered with the tracker: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}

	// Peer hosts: every client is started now and blocks on the go pipe.
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer goW.Close()
	for i := range cfg.N {
		dir := filepath.Join(r.data, "p"+strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			goR.Close()
			return nil, err
		}
		listen := PeerAddr(i+1).String() + ":" + strconv.Itoa(peerPort)
		var argv []string
		switch cfg.Clients {
		case ClientsShoal:
			// Started and listening before the go signal, as libtorrent is
			// (lt_peer.py); the torrent starts at go.
			argv = []string{cfg.Exe, "get", "--wait-go", "--listen", listen, "-o", dir, "--no-dht", "--seed", torrent}
			if cfg.Debug {
				argv = append(argv, "-vv")
			}
			argv = append(argv, profile("p"+strconv.Itoa(i+1))...)
		case ClientsLibtorrent:
			argv = []string{cfg.Python, script, "--listen", listen, "--torrent", torrent, "--save", dir}
		case ClientsHTTP:
			argv = []string{cfg.Exe, "lab", "http-get", "--wait-go", "--url", "http://" + sAddr + ":" + strconv.Itoa(httpPort) + "/" + fileName, "-o", filepath.Join(dir, fileName)}
		}
		p, err := r.ps.start("peer"+strconv.Itoa(i+1), r.net.Peers[i], argv, goR, logPath("p"+strconv.Itoa(i+1)), lines)
		if err != nil {
			goR.Close()
			return nil, err
		}
		r.peers = append(r.peers, p)
	}
	goR.Close()
	if err := waitReady(ctx, lines, r.peers, 60*time.Second); err != nil {
		return nil, fmt.Errorf("lab: peers: %w", err)
	}

	// Baseline counters, then go.
	before, err := r.upSent(ctx)
	if err != nil {
		return nil, err
	}
	cpuCtx, cpuStop := context.WithCancel(ctx)
	defer cpuStop()
	cpuCh := sampleCPU(cpuCtx, 500*time.Millisecond)
	t0 := time.Now()
	goW.Close()
	var tlCh <-chan []tick
	tlCtx, tlStop := context.WithCancel(ctx)
	defer tlStop()
	if !cfg.NoDown {
		tlCh = r.timeline(tlCtx, t0, 500*time.Millisecond)
	}
	r.logf("go (%s, N=%d, d_P2P %.2f s, d_cs %.2f s)", cfg.Clients, cfg.N, r.bounds.DP2P, r.bounds.DCS)

	finish, err := r.await(ctx, lines, t0)
	if err != nil {
		return nil, err
	}
	tEnd := time.Now()
	after, err := r.upSent(ctx)
	if err != nil {
		return nil, err
	}
	cpuStop()
	usage := <-cpuCh
	tlStop()
	var ticks []tick
	if tlCh != nil {
		ticks = <-tlCh
		writeTimeline(filepath.Join(cfg.LogDir, "timeline.csv"), ticks, cfg.N)
	}
	r.ps.stopAll(stopGrace)

	res := r.result(finish, before, after, tEnd.Sub(t0).Seconds())
	_, res.CPUBusyP90 = meanP90(usage.samples)
	res.CPUBusyMean = usage.overall
	if len(usage.samples) == 0 {
		res.CPUBusyP90 = usage.overall
	}
	res.CPU = usage.split
	res.ProcUserSecs, res.ProcSysSecs = r.ps.cpuSeconds()
	res.ProcCPUSecs = res.ProcUserSecs + res.ProcSysSecs
	if len(ticks) > 1 {
		stay := float64(cfg.N - cfg.Leave)
		res.DeliveredAt = deliveredAt(ticks, stay*float64(cfg.FileBytes)*res.Floor, []float64{0.1, 0.5, 0.9})
		// The account explains T when the aggregate upload term is the bound.
		if b := r.bounds; cfg.Leave == 0 && b.Upload >= b.DP2P*(1-1e-9) {
			capBps := float64(cfg.N) * float64(cfg.FileBytes) / b.Upload
			res.Uplinks = accountUplinks(ticks, before, after, capBps, cfg.MTU, cfg.N, cfg.FileBytes, res.FirstFinish, res.Seconds)
		}
	}
	for i := range cfg.N {
		if r.leaving[i] {
			continue
		}
		got, err := fileSHA256(filepath.Join(r.data, "p"+strconv.Itoa(i+1), fileName))
		if err != nil {
			return nil, fmt.Errorf("lab: peer %d: %w", i+1, err)
		}
		if got != want {
			return nil, fmt.Errorf("lab: peer %d reported done but its copy differs from the original", i+1)
		}
		res.Verified++
	}
	return res, nil
}

// waitReady waits for a READY line from each of ps.
func waitReady(ctx context.Context, lines <-chan lineEvent, ps []*proc, timeout time.Duration) error {
	want := map[*proc]bool{}
	for _, p := range ps {
		want[p] = true
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(want) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%d of %d not ready after %v", len(want), len(ps), timeout)
		case ev := <-lines:
			if strings.HasPrefix(ev.text, "READY") {
				delete(want, ev.proc)
			}
		case <-tick.C:
			for p := range want {
				if p.exited() {
					return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
				}
			}
		}
	}
	return nil
}

// await collects completions until every staying peer is done. Peers chosen
// to leave are stopped at LeaveAt x d_P2P.
func (r *run) await(ctx context.Context, lines <-chan lineEvent, t0 time.Time) ([]float64, error) {
	cfg := r.cfg
	finish := make([]float64, cfg.N)
	for i := range finish {
		finish[i] = -1
	}
	index := map[*proc]int{}
	for i, p := range r.peers {
		index[p] = i
	}
	r.leaving = map[int]bool{}
	var leaveC <-chan time.Time
	if cfg.Leave > 0 {
		lt := time.NewTimer(time.Duration(cfg.LeaveAt * r.bounds.DP2P * float64(time.Second)))
		defer lt.Stop()
		leaveC = lt.C
	}
	deadline := time.NewTimer(cfg.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	remaining := cfg.N
	for remaining > 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lab: interrupted with %d of %d peers done", cfg.N-remaining, cfg.N)
		case <-deadline.C:
			return nil, fmt.Errorf("lab: timeout after %v: %d of %d peers done", cfg.Timeout, cfg.N-remaining, cfg.N)
		case <-leaveC:
			leaveC = nil
			for i := cfg.N - cfg.Leave; i < cfg.N; i++ {
				r.leaving[i] = true
				if finish[i] < 0 {
					remaining--
				}
				go r.peers[i].stop(stopGrace)
			}
			r.logf("%d peers left at %.2f s", cfg.Leave, time.Since(t0).Seconds())
		case ev := <-lines:
			i, ok := index[ev.proc]
			if !ok || finish[i] >= 0 || !(strings.HasPrefix(ev.text, "DONE") || strings.HasPrefix(ev.text, "done: ")) {
				continue
			}
			finish[i] = ev.at.Sub(t0).Seconds()
			if !r.leaving[i] {
				remaining--
			}
			r.logf("peer %d done at %.2f s", i+1, finish[i])
		case <-tick.C:
			for i, p := range r.peers {
				if finish[i] < 0 && !r.leaving[i] && p.exited() {
					return nil, fmt.Errorf("lab: peer %d exited before completing: %v", i+1, p.err)
				}
			}
		}
	}
	for i := range r.leaving {
		finish[i] = -1 // left peers do not count, even if they finished before leaving
	}
	return finish, nil
}

// upSent reads the upload qdisc counters: index 0 server, i peer i.
func (r *run) upSent(ctx context.Context) ([]Sent, error) {
	out := make([]Sent, r.cfg.N+1)
	for h := 0; h <= r.cfg.N; h++ {
		ns, _ := r.net.host(h)
		v, err := QdiscSent(ctx, ns, "eth0")
		if err != nil {
			return nil, err
		}
		out[h] = v
	}
	return out, nil
}

func (r *run) result(finish []float64, before, after []Sent, wall float64) *Result {
	cfg := r.cfg
	res := &Result{
		Tag: cfg.Tag, Clients: cfg.Clients, N: cfg.N, FileBytes: cfg.FileBytes, PieceBytes: cfg.PieceBytes,
		UpMbit: cfg.UpMbit, PeerUpMbit: cfg.PeerUpMbit, ServerMbit: cfg.ServerMbit, DownMbit: cfg.PeerDown(0), MTU: cfg.MTU, Left: cfg.Leave,
		DP2P: r.bounds.DP2P, DCS: r.bounds.DCS, Floor: FramingFloor(cfg.MTU), PeerSeconds: finish, LogDir: cfg.LogDir,
	}
	if cfg.Clients != ClientsHTTP {
		res.Seeder = cfg.Seeder
	}
	first := -1.0
	for _, f := range finish {
		if f < 0 {
			continue
		}
		res.Seconds = max(res.Seconds, f)
		if first < 0 || f < first {
			first = f
		}
	}
	res.FirstFinish = first
	res.Spread = res.Seconds - first
	res.Ratio = res.Seconds / res.DP2P
	res.RatioCS = res.Seconds / res.DCS
	if wall <= 0 {
		wall = res.Seconds
	}
	sent := float64(after[0].Bytes - before[0].Bytes)
	res.ServerUpF = sent / float64(cfg.FileBytes)
	res.ServerUtil = sent * 8 / (cfg.ServerMbit * 1e6 * wall)
	for i := range cfg.N {
		res.PeerUtil += float64(after[i+1].Bytes-before[i+1].Bytes) * 8 / (cfg.PeerUp(i) * 1e6 * wall)
	}
	res.PeerUtil /= float64(cfg.N)
	return res
}
