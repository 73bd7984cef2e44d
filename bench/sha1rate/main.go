// Command sha1rate prints this machine's SHA-1 throughput on one core, the
// physical limit for a BitTorrent v1 leecher that verifies every piece on a
// single goroutine. It hashes whole pieces (default 1 MiB, like the
// benchmarks' torrents) from one buffer for a fixed time on one locked OS
// thread, and divides by that thread's CPU time (as `openssl speed` does), so
// other load on a shared machine does not lower the figure; the wall-clock
// rate is printed too.
//
//	go run ./bench/sha1rate              # "sha1 1 core: 1556.3 MB/s per CPU-second (...)"
//	go run ./bench/sha1rate -piece 262144 -seconds 1 -mbs   # just the number
package main

import (
	"crypto/rand"
	"crypto/sha1"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// threadCPU is the CPU time (user+system) of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	piece := flag.Int("piece", 1<<20, "bytes hashed per Sum (the piece length)")
	seconds := flag.Float64("seconds", 2, "how long to hash, in total")
	runs := flag.Int("runs", 4, "measure this many times and report the best (a shared machine's other load only lowers a run)")
	bare := flag.Bool("mbs", false, "print only the MB/s figure")
	flag.Parse()
	if *piece <= 0 || *piece > 64<<20 || *seconds <= 0 || *seconds > 60 || *runs < 1 || *runs > 100 {
		fmt.Fprintln(os.Stderr, "sha1rate: -piece must be in 1..64 MiB, -seconds in (0, 60], -runs in 1..100")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	buf := make([]byte, *piece)
	if _, err := rand.Read(buf); err != nil {
		fmt.Fprintln(os.Stderr, "sha1rate:", err)
		os.Exit(1)
	}
	sha1.Sum(buf) // warm up
	limit := time.Duration(*seconds * float64(time.Second) / float64(*runs))
	var best, bestWall float64
	for r := 0; r < *runs; r++ {
		cpuRate, wallRate := measure(buf, limit)
		if cpuRate > best {
			best, bestWall = cpuRate, wallRate
		}
	}
	mbs := best
	if *bare {
		fmt.Printf("%.1f\n", mbs)
		return
	}
	fmt.Printf("sha1 1 core: %.1f MB/s per CPU-second (%.1f MB/s wall; %d-byte pieces, best of %d runs)\n",
		mbs, bestWall, *piece, *runs)
}

// measure hashes buf repeatedly for about limit and returns MB per second of
// this thread's CPU time and per second of wall time.
func measure(buf []byte, limit time.Duration) (cpuRate, wallRate float64) {
	var n int64
	start, cpu0 := time.Now(), threadCPU()
	var el time.Duration
	for el < limit {
		sha1.Sum(buf)
		n += int64(len(buf))
		el = time.Since(start)
	}
	cpu := threadCPU() - cpu0
	if cpu <= 0 {
		cpu = el // no rusage: fall back to wall time
	}
	return float64(n) / 1e6 / cpu.Seconds(), float64(n) / 1e6 / el.Seconds()
}
