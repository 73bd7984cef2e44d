package lab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lineEvent is one output line of a lab process, stamped when read.
type lineEvent struct {
	proc *proc
	at   time.Time
	text string
}

// proc is one process the lab started inside a namespace with
// `ip netns exec` (which execs, so the PID is the process itself). It runs
// in its own process group and dies with the lab (Pdeathsig).
type proc struct {
	name string        // static
	cmd  *exec.Cmd     // static after start
	done chan struct{} // closed when the process has been waited for
	err  error         // Wait's result; written before done closes
}

// procs owns every process of a run; stopAll ends them, bounded.
type procs struct {
	mu   sync.Mutex
	list []*proc // guarded by mu
	wg   sync.WaitGroup
}

// start runs argv inside ns. Its stdout and stderr go, line by line, to
// logPath and (if lines is non-nil) to lines; stdin is the given file (the
// go pipe) or /dev/null.
func (ps *procs) start(name, ns string, argv []string, stdin *os.File, logPath string, lines chan<- lineEvent) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: pipe: %w", name, err)
	}
	args := append([]string{"netns", "exec", ns}, argv...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = w, w
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Dir = filepath.Dir(logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		logf.Close()
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	w.Close()
	ps.list = append(ps.list, p)
	ps.wg.Add(2)
	go func() { // reader: ends at EOF, i.e. when the process tree closed its output
		defer ps.wg.Done()
		defer logf.Close()
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			ev := lineEvent{proc: p, at: time.Now(), text: sc.Text()}
			fmt.Fprintf(logf, "%s %s\n", ev.at.Format("15:04:05.000"), ev.text)
			if lines != nil && isEvent(ev.text) {
				select {
				case lines <- ev:
				default: // a bounded queue: the run loop only needs DONE/READY lines, and it has room for them
				}
			}
		}
		io.Copy(logf, r)
	}()
	go func() {
		defer ps.wg.Done()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// isEvent says which output lines the run loop acts on: READY (waiting for
// go), DONE / done: (complete and verified). At most a few per process, so
// a channel of a few per process never fills.
func isEvent(s string) bool {
	return strings.HasPrefix(s, "READY") || strings.HasPrefix(s, "DONE") || strings.HasPrefix(s, "done: ")
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILL.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pg := -p.cmd.Process.Pid
	syscall.Kill(pg, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	syscall.Kill(pg, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// cpuSeconds is the user and the system time of an exited process.
func (p *proc) cpuSeconds() (user, sys float64) {
	if !p.exited() || p.cmd.ProcessState == nil {
		return 0, 0
	}
	return p.cmd.ProcessState.UserTime().Seconds(), p.cmd.ProcessState.SystemTime().Seconds()
}

// stopAll stops every process concurrently and waits for the readers.
func (ps *procs) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(grace) }()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { ps.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// cpuSeconds sums the user and the system time of every exited process.
func (ps *procs) cpuSeconds() (user, sys float64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.list {
		u, s := p.cpuSeconds()
		user += u
		sys += s
	}
	return user, sys
}
