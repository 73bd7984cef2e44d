package clients

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ShoalEnv names an environment variable with a prebuilt shoal binary to
// use instead of building one.
const ShoalEnv = "SHOAL_BIN"

var (
	buildOnce sync.Once
	buildDir  string // temporary directory holding the built binary
	buildBin  string
	buildErr  error
)

// ModuleRoot returns the directory holding shoal's go.mod, found from this
// source file's location.
func ModuleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("module root: no caller information")
	}
	dir := filepath.Dir(file)
	for range 10 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		dir = filepath.Dir(dir)
	}
	return "", errors.New("module root: go.mod not found above " + filepath.Dir(file))
}

// ShoalBinary returns the path of a shoal binary built from this checkout
// (`go build ./cmd/shoal`), once per test binary; $SHOAL_BIN overrides it.
// Call Main from TestMain to delete it afterwards.
func ShoalBinary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv(ShoalEnv); b != "" {
		return b
	}
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "shoal-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		goBin := "go"
		if _, err := exec.LookPath(goBin); err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		bin := filepath.Join(buildDir, "shoal")
		cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/shoal")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/shoal: %w\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Main runs the tests and removes the shoal binary built by ShoalBinary:
// func TestMain(m *testing.M) { os.Exit(clients.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// RunShoal runs one shoal command to completion (bounded by timeout) and
// returns its stdout and stderr.
func RunShoal(t testing.TB, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(timeout, append([]string{ShoalBinary(t)}, args...)...)
}

// StartShoalSeeder starts `shoal seed --listen 127.0.0.1:PORT -d dataParent
// --no-dht [extra...] torrent`. It returns once the process is up; wait for
// the tracker with WaitSeeders, or for the port with WaitListening.
func StartShoalSeeder(t testing.TB, torrent, dataParent string, extra ...string) *Peer {
	t.Helper()
	bin := ShoalBinary(t)
	p := newPeer(t, "shoal")
	args := []string{bin, "seed", "--listen", p.Addr.String(), "-d", dataParent, "--no-dht"}
	args = append(append(args, extra...), torrent)
	p.Proc = StartProc(t, "shoal-seed", "", nil, args...)
	return p
}

// StartShoalLeecher starts `shoal get -o out --listen 127.0.0.1:PORT --no-dht
// [extra...] torrent`, which exits 0 when all data is present and verified.
func StartShoalLeecher(t testing.TB, torrent, out string, extra ...string) *Peer {
	t.Helper()
	bin := ShoalBinary(t)
	p := newPeer(t, "shoal")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "get", "-o", out, "--listen", p.Addr.String(), "--no-dht"}
	args = append(append(args, extra...), torrent)
	p.Proc = StartProc(t, "shoal-get", "", nil, args...)
	return p
}

// Summary is shoal get's final line:
// "done: <name> <size> in <secs>s, down <rate>, up <rate>, uploaded <N> bytes, peers <n>".
type Summary struct {
	Line          string
	Name          string
	Size          string
	Seconds       float64
	UploadedBytes int64
	Peers         int
}

var (
	summaryRe  = regexp.MustCompile(`done: (.*) (\S+) in ([0-9.]+)s, down ([^,]*), up ([^,]*), uploaded (\d+) bytes, peers (\d+)`)
	uploadedRe = regexp.MustCompile(`done: .*uploaded (\d+) bytes`)
)

// ParseSummary finds the last summary line in a shoal get log. A line that
// does not match the full format but has "done: ... uploaded N bytes" still
// yields UploadedBytes.
func ParseSummary(log string) (Summary, bool) {
	if ms := summaryRe.FindAllStringSubmatch(log, -1); len(ms) > 0 {
		m := ms[len(ms)-1]
		s := Summary{Line: m[0], Name: m[1], Size: m[2]}
		s.Seconds, _ = strconv.ParseFloat(m[3], 64)
		s.UploadedBytes, _ = strconv.ParseInt(m[6], 10, 64)
		s.Peers, _ = strconv.Atoi(m[7])
		return s, true
	}
	if ms := uploadedRe.FindAllStringSubmatch(log, -1); len(ms) > 0 {
		m := ms[len(ms)-1]
		s := Summary{Line: m[0]}
		s.UploadedBytes, _ = strconv.ParseInt(m[1], 10, 64)
		return s, true
	}
	return Summary{}, false
}
