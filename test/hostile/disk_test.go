package hostile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// mountTmpfs mounts a tmpfs of size (e.g. "2m") on a new directory and
// unmounts it in cleanup. It skips the test when not root or mount fails.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir, err := os.MkdirTemp("", "shoal-hostile-tmpfs-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("umount", "-l", dir).Run()
		_ = os.RemoveAll(dir)
	})
	return dir
}

func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// TestDiskFull downloads a 6 MiB torrent into a 2 MiB tmpfs: shoal must
// report "no space", keep running (paused, retrying) and, once the file
// system is enlarged, finish with byte-identical content.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "2m")
	f := makeFixture(t, "big.bin", 6<<20+17, 64<<10, "")
	seeder := clients.StartShoalSeeder(t, f.Torrent, f.DataDir)
	if err := clients.WaitListening(seeder.Addr.String(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	p := clients.StartShoalLeecher(t, f.Torrent, mnt, "--peer", seeder.Addr.String())
	if !waitFor(60*time.Second, func() bool { return strings.Contains(p.Log(), "no space left on device") || p.Exited() }) {
		t.Fatalf("no 'no space' message within 60 s:\n%s", p.Log())
	}
	if p.Exited() {
		t.Fatalf("shoal get exited on a full disk instead of pausing: %v\n%s", p.Wait(0), p.Log())
	}
	time.Sleep(2 * time.Second) // paused, retrying: it must still be alive
	if p.Exited() {
		t.Fatalf("shoal get exited while paused: %v\n%s", p.Wait(0), p.Log())
	}
	remount(t, mnt, "size=64m")
	if err := p.WaitDone(90 * time.Second); err != nil {
		t.Fatalf("did not finish after space was freed: %v\n%s", err, p.Log())
	}
	if err := sameFile(filepath.Join(mnt, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	record(t, "full disk (2 MiB tmpfs, 6 MiB torrent)", 1,
		"logged 'no space left on device', paused and retried, completed identical after remount to 64 MiB")
}

// TestReadOnlyOutput points `shoal get` at a read-only file system: it must
// fail or pause with a clear "read-only" message, never hang silently, and
// complete once the file system is writable again.
func TestReadOnlyOutput(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "16m")
	f := makeFixture(t, "ro.bin", 1<<20+3, 64<<10, "")
	seeder := clients.StartShoalSeeder(t, f.Torrent, f.DataDir)
	if err := clients.WaitListening(seeder.Addr.String(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(mnt, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	remount(t, mnt, "ro")
	_, stderr, err := runBounded(8*time.Second, clients.ShoalBinary(t), "get", "-o", out, "--listen", "127.0.0.1:0",
		"--no-dht", "--peer", seeder.Addr.String(), f.Torrent)
	outcome := ""
	switch {
	case err == nil:
		t.Fatalf("shoal get succeeded on a read-only file system:\n%s", stderr)
	case !strings.Contains(stderr, "read-only file system"):
		t.Errorf("no clear read-only message (err %v):\n%s", err, tail(stderr, 2000))
	case strings.Contains(err.Error(), "killed after"):
		outcome = "paused with a 'read-only file system' message (killed by the test after 8 s)"
	default:
		outcome = "exited non-zero: " + firstLine(stderr, "read-only")
	}
	remount(t, mnt, "rw")
	_, stderr, err = runBounded(60*time.Second, clients.ShoalBinary(t), "get", "-o", out, "--listen", "127.0.0.1:0",
		"--no-dht", "--peer", seeder.Addr.String(), f.Torrent)
	if err != nil {
		t.Fatalf("after remounting read-write: %v\n%s", err, stderr)
	}
	if err := sameFile(filepath.Join(out, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	record(t, "read-only output folder", 1, outcome+"; completed once writable")
}

func firstLine(s, word string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			return strings.TrimSpace(l)
		}
	}
	return fmt.Sprintf("%.120s", s)
}
