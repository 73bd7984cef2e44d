// Command manytorrents measures the memory of one shoal seeder that seeds many
// torrents and serves many connected peers, all over 127.0.0.1:
//
//	go run ./bench/manytorrents                  # 200 torrents, 50 peers, limit 300 MiB
//	go run ./bench/manytorrents -torrents 20 -peers 5 -size 1048576
//
// It makes -torrents small torrents of random data (a folder holding
// data.bin of -size bytes and tail.bin of one 16 KiB piece, -piece bytes per
// piece) with internal/metainfo, then re-executes itself as the seeder
// (-role seeder): ONE session.Client on 127.0.0.1 with no DHT, no trackers
// and no port forwarding that adds every torrent (hashing the data, as
// `shoal seed` does on a fresh folder). This process then runs -peers
// leechers (with -resume, the seeder is started a second time first, so it
// trusts the resume records its first run wrote, like a restarted daemon),
// each its own session.Client on 127.0.0.1 that downloads
// data.bin of a different torrent from the seeder (given as a known peer,
// like `shoal get --peer`). tail.bin is skipped on purpose: a leecher that
// had every piece would be a seed too, and shoal drops seed-to-seed
// connections, so the leechers stay one piece short and keep their
// connection open. Every copy is compared with the original.
//
// Once every leecher is done, -settle has passed and the seeder holds -peers established
// connections (counted from /proc/net/tcp), it reads the seeder's VmRSS and
// VmHWM from /proc/PID/status and prints
//
//	torrents=200 peers=50 seeder_rss_mib=X seeder_hwm_mib=Y limit=300
//
// followed by detail lines (the RSS before any peer connected, the highest
// RSS seen while the leechers downloaded, and the seeder's Go runtime
// figures). It exits 1 when a leecher fails, a copy differs, the seeder's
// connections are not all open, or anything times out (-timeout bounds the
// whole run); exceeding -limit is reported ("verdict=over") but does not
// change the exit status. The seeder child is ended by PID.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.role, "role", "", "internal: \"seeder\" runs the seeder child")
	flag.IntVar(&o.torrents, "torrents", 200, "torrents the seeder seeds")
	flag.IntVar(&o.peers, "peers", 50, "leechers, each on a different torrent (at most -torrents)")
	flag.Int64Var(&o.size, "size", 4<<20, "bytes of data.bin per torrent")
	flag.Int64Var(&o.piece, "piece", 256<<10, "piece length (a power of two, 16 KiB..16 MiB)")
	flag.Float64Var(&o.limitMiB, "limit", 300, "RSS target for the seeder, MiB (reported, not enforced)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait this long after the last leecher is done before sampling")
	flag.StringVar(&o.dir, "dir", "", "work folder (default: a new temp folder in /dev/shm, else $TMPDIR); removed at the end unless given")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "at the end, have the seeder write a pprof heap profile to this file")
	flag.BoolVar(&o.resume, "resume", false, "measure a restarted seeder: a first seeder run hashes the data and writes resume records, the measured one trusts them (and hashes each piece on its first upload)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var err error
	if o.role == "seeder" {
		err = runSeeder(ctx, o.dir)
	} else if o.role != "" {
		err = fmt.Errorf("unknown -role %q", o.role)
	} else {
		err = o.check()
		if err == nil {
			err = run(ctx, o)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manytorrents:", err)
		os.Exit(1)
	}
}

// options are the command-line settings; static after flag parsing.
type options struct {
	role            string
	torrents, peers int
	size, piece     int64
	limitMiB        float64
	timeout, settle time.Duration
	dir             string
	heapProfile     string
	keep, resume    bool
}

func (o options) check() error {
	switch {
	case o.torrents < 1 || o.torrents > 10000:
		return fmt.Errorf("-torrents must be in 1..10000")
	case o.peers < 1 || o.peers > o.torrents || o.peers > 400:
		return fmt.Errorf("-peers must be in 1..min(-torrents, 400)")
	case o.piece < 16<<10 || o.piece > 16<<20 || o.piece&(o.piece-1) != 0:
		return fmt.Errorf("-piece must be a power of two in 16 KiB..16 MiB")
	case o.size < o.piece || o.size > 256<<20 || o.size%o.piece != 0:
		return fmt.Errorf("-size must be a multiple of -piece, at most 256 MiB (tail.bin must start a piece of its own)")
	case o.settle < 0 || o.settle > time.Minute:
		return fmt.Errorf("-settle must be in [0, 1m]")
	case o.timeout <= 0 || o.timeout > time.Hour:
		return fmt.Errorf("-timeout must be in (0, 1h]")
	}
	return nil
}
