package transfer

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// scratchDir is a temporary directory on /dev/shm when it exists (so the
// benchmark measures the engine, not the disk), else the test's TempDir.
func scratchDir(b *testing.B) string {
	b.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "shoal-bench-transfer-")
		if err == nil {
			b.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return b.TempDir()
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func contentMiB(b *testing.B) int {
	n := 256
	if s := os.Getenv("BENCH_MIB"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 || v > 8192 {
			b.Fatalf("BENCH_MIB=%q: want 1..8192", s)
		}
		n = v
	}
	return n
}

// BenchmarkTransfer moves one single-file torrent (1 MiB pieces) from a
// seeding Client to a leeching Client over loopback TCP, both with file
// storage, and checks the copy. SetBytes makes -bench print MB/s.
func BenchmarkTransfer(b *testing.B) {
	size := contentMiB(b) << 20
	dir := scratchDir(b)
	seedDir := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	src := filepath.Join(seedDir, "content.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	mi, _, err := metainfo.Create(context.Background(), metainfo.CreateOptions{Path: src, PieceLength: 1 << 20, NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seeder, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, session.Options{Root: seedDir, NoTrackers: true})
	if err != nil {
		b.Fatal(err)
	}
	if !st.Stats().Complete {
		b.Fatal("seeder does not see its data")
	}
	var stopProfile func() // set while a CPU profile runs
	var last string        // the last copy, compared at the end
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		// a profile of the transfers only, without the set-up (data, hashing)
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		defer func() {
			if stopProfile != nil {
				stopProfile()
			}
		}()
	}
	b.SetBytes(int64(size))
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		lc, err := session.NewClient(session.Config{Listen: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		lctx, lcancel := context.WithCancel(ctx)
		go lc.Run(lctx)
		lt, err := lc.Add(lctx, mi, session.Options{Root: out, NoTrackers: true, Peers: []string{seeder.Addr().String()}})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-lt.Done():
		case <-time.After(5 * time.Minute):
			b.Fatalf("not complete after 5 minutes: %+v", lt.Stats())
		}
		b.StopTimer()
		lcancel()
		<-lt.Stopped()
		// every piece was hash-checked by the leecher; compare the last copy
		// byte for byte too, after the profile has stopped
		if i < b.N-1 {
			os.RemoveAll(out)
		} else {
			last = filepath.Join(out, "content.bin")
		}
		b.StartTimer()
	}
	b.StopTimer()
	// CPU of seeder and leecher together (one process), per transferred MB
	b.ReportMetric(float64(size)*float64(b.N)/1e6/(processCPU()-cpu0).Seconds(), "MB/cpu-s")
	if stopProfile != nil {
		stopProfile()
		stopProfile = nil
	}
	cancel()
	<-st.Stopped()
	got, err := os.ReadFile(last)
	if err != nil {
		b.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		b.Fatal("the copy differs from the original")
	}
}
