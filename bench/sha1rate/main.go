// Command sha1rate prints this machine's SHA-1 throughput on one core, the
// physical limit for a BitTorrent v1 leecher that verifies every piece on a
// single goroutine. It hashes whole pieces (default 1 MiB, like the
// benchmarks' torrents) from one buffer for a fixed time on one locked OS
// thread, and divides by that thread's CPU time (as `openssl speed` does), so
// other load on a shared machine does not lower the figure; the wall-clock
// rate is printed too.
//
// With -threads N it hashes on N locked OS threads at once (each its own
// buffer) and prints the per-thread rate (bytes over the threads' summed CPU
// time) and the aggregate wall-clock rate: the real ceiling for hashing on N
// cores, which is below N x the one-core figure when the cores share
// execution units (hyperthreads) or memory bandwidth, or the machine is busy.
//
//	go run ./bench/sha1rate              # "sha1 1 core: 1556.3 MB/s per CPU-second (...)"
//	go run ./bench/sha1rate -piece 262144 -seconds 1 -mbs   # just the number
//	go run ./bench/sha1rate -threads 2   # "sha1 2 threads: ... per CPU-second, ... MB/s wall in all"
package main

import (
	"crypto/rand"
	"crypto/sha1"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
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
	bare := flag.Bool("mbs", false, "print only the MB/s figure (per CPU-second; with -threads > 1 the aggregate wall-clock figure)")
	threads := flag.Int("threads", 1, "hash on this many OS threads at once")
	flag.Parse()
	if *piece <= 0 || *piece > 64<<20 || *seconds <= 0 || *seconds > 60 || *runs < 1 || *runs > 100 || *threads < 1 || *threads > 256 {
		fmt.Fprintln(os.Stderr, "sha1rate: -piece must be in 1..64 MiB, -seconds in (0, 60], -runs in 1..100, -threads in 1..256")
		os.Exit(2)
	}
	if *threads > 1 {
		parallel(*threads, *piece, *seconds, *runs, *bare)
		return
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

// parallel hashes on n locked OS threads at once, runs times, and prints
// the best aggregate wall-clock rate with that run's per-thread rate per
// CPU-second.
func parallel(n, piece int, seconds float64, runs int, bare bool) {
	runtime.GOMAXPROCS(n)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, piece)
		if _, err := rand.Read(bufs[i]); err != nil {
			fmt.Fprintln(os.Stderr, "sha1rate:", err)
			os.Exit(1)
		}
	}
	limit := time.Duration(seconds * float64(time.Second) / float64(runs))
	var bestWall, bestCPU float64
	for r := 0; r < runs; r++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bytes int64
		var cpu time.Duration
		start := time.Now()
		for _, buf := range bufs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // the thread ends with the goroutine
				cpu0 := threadCPU()
				var k int64
				for t0 := time.Now(); time.Since(t0) < limit; k += int64(len(buf)) {
					sha1.Sum(buf)
				}
				c := threadCPU() - cpu0
				mu.Lock()
				bytes += k
				cpu += c
				mu.Unlock()
			}()
		}
		wg.Wait()
		el := time.Since(start)
		if cpu <= 0 {
			cpu = el * time.Duration(n)
		}
		if wall := float64(bytes) / 1e6 / el.Seconds(); wall > bestWall {
			bestWall, bestCPU = wall, float64(bytes)/1e6/cpu.Seconds()
		}
	}
	if bare {
		fmt.Printf("%.1f\n", bestWall)
		return
	}
	fmt.Printf("sha1 %d threads: %.1f MB/s per CPU-second per thread, %.1f MB/s wall in all (%d-byte pieces, best of %d runs)\n",
		n, bestCPU, bestWall, piece, runs)
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
