package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// runSeeder is the child process: one session.Client on 127.0.0.1 seeding
// every DIR/torrents/*.torrent from DIR/data. It prints "ready ADDR" on
// stdout once every torrent is added and peers are accepted, answers a
// "stats" line on stdin with a "stats ..." line of Go runtime figures and a
// "heapprofile PATH" line with "heapprofile ok" once it wrote one, and
// stops at "quit", at the end of stdin (the parent is gone) or at ctx's end.
func runSeeder(ctx context.Context, dir string) error {
	if dir == "" {
		return fmt.Errorf("seeder: -dir is required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	paths, err := filepath.Glob(filepath.Join(dir, "torrents", "*.torrent"))
	if err != nil || len(paths) == 0 {
		return fmt.Errorf("seeder: no torrents in %s (%v)", dir, err)
	}
	sort.Strings(paths)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// the zero Config leaves DHT and port forwarding off; Listen is loopback
	client, err := session.NewClient(session.Config{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return fmt.Errorf("seeder: %w", err)
	}
	var ts []*session.Torrent
	for _, p := range paths {
		mi, err := metainfo.Load(p)
		if err != nil {
			return fmt.Errorf("seeder: %w", err)
		}
		t, err := client.Add(ctx, mi, session.Options{Root: filepath.Join(dir, "data"), NoTrackers: true})
		if err != nil {
			return fmt.Errorf("seeder: add %s: %w", mi.Info.Name, err)
		}
		ts = append(ts, t)
	}
	for _, t := range ts { // Stats is refreshed by each torrent's loop: wait for it, bounded
		for st := t.Stats(); st.Have != st.NumPieces; st = t.Stats() {
			if ctx.Err() != nil {
				return fmt.Errorf("seeder: %s incomplete (%d of %d pieces)", st.Name, st.Have, st.NumPieces)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		client.Run(ctx)
	}()
	fmt.Printf("ready %s\n", client.Addr())

	lines := make(chan string)
	go func() { // ends at EOF on stdin; the process exits right after anyway
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case l, ok := <-lines:
			if !ok || l == "quit" {
				break loop
			}
			if l == "stats" {
				fmt.Println(runtimeStats(ts))
			}
			if path, ok := strings.CutPrefix(l, "heapprofile "); ok {
				fmt.Println("heapprofile", writeHeapProfile(path))
			}
		}
	}
	cancel()
	stopBy := time.After(5 * time.Second)
	for _, t := range ts {
		select {
		case <-t.Stopped():
		case <-stopBy:
			return fmt.Errorf("seeder: torrents did not stop within 5 s")
		}
	}
	<-runDone
	return nil
}

// writeHeapProfile writes a pprof heap profile (after a GC) to path.
func writeHeapProfile(path string) string {
	f, err := os.Create(path)
	if err != nil {
		return err.Error()
	}
	runtime.GC()
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// runtimeStats is one line of the seeder's Go runtime and engine figures.
func runtimeStats(ts []*session.Torrent) string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	peers := 0
	var up int64
	for _, t := range ts {
		st := t.Stats()
		peers += st.Peers
		up += st.Uploaded
	}
	const mib = 1 << 20
	return fmt.Sprintf("stats goroutines=%d heap_inuse_mib=%.1f heap_idle_mib=%.1f heap_released_mib=%.1f stack_inuse_mib=%.1f go_sys_mib=%.1f gc_cycles=%d engine_peers=%d uploaded_mib=%.1f",
		runtime.NumGoroutine(), float64(m.HeapInuse)/mib, float64(m.HeapIdle)/mib, float64(m.HeapReleased)/mib,
		float64(m.StackInuse)/mib, float64(m.Sys)/mib, m.NumGC, peers, float64(up)/mib)
}
