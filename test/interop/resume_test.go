package interop

import (
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// `shoal get` killed with SIGKILL midway, then run again, completes with
// identical data. The libtorrent seeder is rate-limited so that "midway"
// lasts long enough to be caught.
func TestShoalResumeAfterKill(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.Libtorrent)
	f := newFixture(t, "single")
	clients.StartLibtorrentSeeder(t, f.torrent, f.parent, "--upload-limit", "4194304")
	f.waitSeeders(t, 1)
	out := filepath.Join(t.TempDir(), "out")

	first := clients.StartShoalLeecher(t, f.torrent, out)
	want := f.info.TotalSize / 5
	var got int64
	deadline := time.Now().Add(transferTime)
	for time.Now().Before(deadline) && !first.Exited() {
		if got = clients.DiskUsage(out); got >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first.Exited() {
		t.Fatalf("first shoal get ended before it could be killed: %v", first.Wait(0))
	}
	if got < want {
		t.Fatalf("first shoal get wrote only %d of %d bytes in %v", got, want, transferTime)
	}
	first.Kill() // SIGKILL: no chance to save anything on the way out
	var ee *exec.ExitError
	if err := first.Wait(10 * time.Second); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run was not killed by SIGKILL: %v", err)
	}
	t.Logf("killed the first run with %d bytes on disk (%.0f%%)", got, 100*float64(got)/float64(f.info.TotalSize))

	second := clients.StartShoalLeecher(t, f.torrent, out)
	f.finish(t, second, out)
}
