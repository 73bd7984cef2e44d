package clients

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 8 * time.Second

// logTail is how many bytes of each log are printed when a test fails.
const logTail = 6000

// Proc is one started program, in its own process group. All fields are
// static after start except the exit state, which is written once by the
// waiter goroutine before done is closed.
type Proc struct {
	Name    string // label used in logs
	LogPath string // combined stdout+stderr
	cmd     *exec.Cmd
	logf    *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	extra   []string      // further log files printed on failure (guarded by mu)
	mu      sync.Mutex
}

// StartProc starts argv[0] with argv[1:] in dir (may be ""), with extra
// environment entries env, in a new process group; stdout and stderr go to
// a log file below t.TempDir(). The process is stopped in t.Cleanup, and its
// log tail printed if the test failed.
func StartProc(t testing.TB, name, dir string, env []string, argv ...string) *Proc {
	t.Helper()
	logDir := t.TempDir()
	p := &Proc{Name: name, LogPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatalf("%s: log file: %v", name, err)
	}
	p.logf = f
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Pdeathsig: if the test binary itself dies (go test -timeout, SIGKILL)
	// before t.Cleanup runs, the kernel still ends the client.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start %v: %v", name, argv, err)
	}
	fmt.Fprintf(f, "# %s: pid %d: %q\n", name, cmd.Process.Pid, argv)
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.printLogs(t)
		}
	})
	return p
}

// AddLog registers another log file (e.g. a daemon's own log) that is
// printed with the process's output when the test fails.
func (p *Proc) AddLog(path string) {
	p.mu.Lock()
	p.extra = append(p.extra, path)
	p.mu.Unlock()
}

func (p *Proc) printLogs(t testing.TB) {
	p.mu.Lock()
	paths := append([]string{p.LogPath}, p.extra...)
	p.mu.Unlock()
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(b) > logTail {
			b = append([]byte("...\n"), b[len(b)-logTail:]...)
		}
		t.Logf("---- %s: %s ----\n%s", p.Name, filepath.Base(path), b)
	}
}

// PID is the process (and process group) id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0). On timeout it returns an error and leaves the
// process running.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w", p.Name, p.waitErr)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: still running after %v", p.Name, timeout)
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after a grace
// period, and waits for the exit. Safe to call more than once.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group and waits (bounded) for the exit.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Log returns the process's stdout and stderr so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// errTimeout is returned by the polling helpers when time runs out.
var errTimeout = errors.New("timed out")

// poll calls f every interval until it returns true or timeout passes.
func poll(timeout, interval time.Duration, f func() bool) error {
	end := time.Now().Add(timeout)
	for {
		if f() {
			return nil
		}
		if time.Now().After(end) {
			return errTimeout
		}
		time.Sleep(interval)
	}
}

// runCmd runs a short command with a timeout and returns its stdout, stderr.
func runCmd(timeout time.Duration, argv ...string) (string, string, error) {
	var so, se bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return so.String(), se.String(), fmt.Errorf("%s: %w: %s", argv[0], err, bytes.TrimSpace(se.Bytes()))
		}
		return so.String(), se.String(), nil
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return so.String(), se.String(), fmt.Errorf("%s: killed after %v", argv[0], timeout)
	}
}
