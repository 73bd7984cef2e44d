package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSmokeSwarm builds the shoal binary and runs a tiny lab (N=2, F=4 MiB,
// fast links) for shoal, then checks the result and that nothing is left
// behind. Root only; skipped when `ip netns` does not work.
func TestSmokeSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("ip netns does not work here: %v %s", err, out)
	}
	exe := filepath.Join(t.TempDir(), "shoal")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", exe, "github.com/shoal-p2p/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("build shoal: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := Run(ctx, Config{
		N: 2, FileBytes: 4 << 20, UpMbit: 50, Exe: exe, LogDir: t.TempDir(), Log: &log, Timeout: 60 * time.Second,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.Verified != 2 || res.Seconds <= 0 || res.DP2P <= 0 || res.Ratio != res.Seconds/res.DP2P {
		t.Errorf("result: %+v", res)
	}
	if res.ServerUpF < 0.9 {
		t.Errorf("server uploaded %.2f F through its tbf: the counters are wrong", res.ServerUpF)
	}
	ls, err := FindLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.PID == os.Getpid() {
			t.Errorf("left behind: %s", l.Name)
		}
	}
}
