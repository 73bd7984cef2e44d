package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/tracker/server"
)

func init() { register(newTrackerCmd) }

type trackerFlags struct {
	http, udp, store, allow, udpSecret string
	catalog, catalogListen             string
	catalogRate                        float64
	interval, minInterval              time.Duration
	maxNumWant                         int
	rateLimit                          float64
	verbose                            bool
}

func newTrackerCmd() *cobra.Command {
	var f trackerFlags
	cmd := &cobra.Command{
		Use:   "tracker",
		Short: "run a BitTorrent tracker (HTTP and UDP)",
		Long: `tracker serves BitTorrent announces and scrapes over HTTP (BEP 3, 23, 7, 48)
and UDP (BEP 15). /metrics gives Prometheus metrics and / a status page.

Swarm state lives in memory by default. With --store redis://HOST:PORT/DB
several tracker processes share one swarm state; they also share the UDP
connection-id secret through Redis, so they may sit behind one address.
With --allow FILE (one hex info-hash per line) only listed torrents are
tracked. An empty --http or --udp turns that frontend off.

With --catalog SPEC (a SQLite file path, or a postgres:// URL) the tracker is
also a search directory: it records the name, file list and size of each
torrent it tracks and answers GET /search?q=WORDS (JSON; a plain page with
html=1 or for browsers). Torrents enter the catalog by POST /upload of a
.torrent file, or by fetching their metadata (BEP 9) from the peers that
announce them; seeder counts follow the announces.`,
		Example: `  shoal tracker --http 127.0.0.1:6969 --udp 127.0.0.1:6969
  shoal tracker --store redis://127.0.0.1:6379/0 --allow whitelist.txt --interval 10m
  shoal tracker --http 127.0.0.1:6969 --catalog ./catalog.db
  curl --data-binary @file.torrent http://127.0.0.1:6969/upload
  curl 'http://127.0.0.1:6969/search?q=big+buck'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTracker(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.http, "http", ":6969", "HTTP listen address (announce, scrape, metrics, status); empty = off")
	fl.StringVar(&f.udp, "udp", ":6969", "UDP listen address (BEP 15); empty = off")
	fl.StringVar(&f.store, "store", "memory", "swarm store: memory or redis://HOST:PORT/DB")
	fl.StringVar(&f.allow, "allow", "", "private mode: file of allowed info-hashes, one hex hash per line")
	fl.DurationVar(&f.interval, "interval", server.DefaultInterval, "announce interval told to clients")
	fl.DurationVar(&f.minInterval, "min-interval", 0, "min interval told to clients (default min(5m, --interval))")
	fl.IntVar(&f.maxNumWant, "max-numwant", server.DefaultMaxNumWant, "most peers returned per announce")
	fl.Float64Var(&f.rateLimit, "rate-limit", 20, "announces+scrapes per second per client IP (burst 4x); 0 = unlimited")
	fl.StringVar(&f.udpSecret, "udp-secret", "", "secret keying UDP connection ids (default: random, or shared via Redis)")
	fl.StringVar(&f.catalog, "catalog", "", "search directory: SQLite file or postgres:// URL (serves /search and /upload)")
	fl.StringVar(&f.catalogListen, "catalog-listen", "127.0.0.1:0", "TCP address the metadata fetcher listens on (it only dials out)")
	fl.Float64Var(&f.catalogRate, "catalog-fetch-rate", 2, "metadata fetches started per second for torrents not yet in the catalog")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func runTracker(ctx context.Context, f trackerFlags) error {
	if f.http == "" && f.udp == "" {
		return errors.New("tracker: both --http and --udp are off")
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var store server.Store
	switch {
	case f.store == "memory":
		store = server.NewMemoryStore()
	case strings.HasPrefix(f.store, "redis://"):
		rs, err := server.NewRedisStore(ctx, f.store, "")
		if err != nil {
			return err
		}
		store = rs
	default:
		return fmt.Errorf("tracker: --store %q: want memory or redis://HOST:PORT/DB", f.store)
	}
	defer store.Close()

	cfg := server.Config{
		Interval: f.interval, MinInterval: f.minInterval,
		MaxNumWant: f.maxNumWant, RateLimit: f.rateLimit, Logger: log,
	}
	if f.allow != "" {
		fh, err := os.Open(f.allow)
		if err != nil {
			return fmt.Errorf("tracker: --allow: %w", err)
		}
		cfg.Allow, err = server.ParseAllowList(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("tracker: --allow %s: %w", f.allow, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 5)
	running := 0
	if f.catalog != "" {
		if f.http == "" {
			return errors.New("tracker: --catalog needs the HTTP frontend (--http)")
		}
		stop, err := startCatalog(ctx, f, &cfg, log, errc)
		if err != nil {
			return err
		}
		defer stop()
		running++
	}
	tr, err := server.New(store, cfg)
	if err != nil {
		return err
	}
	if f.http != "" {
		ln, err := net.Listen("tcp", f.http)
		if err != nil {
			return fmt.Errorf("tracker: --http: %w", err)
		}
		log.Info("tracker: HTTP listening", "addr", ln.Addr().String(), "store", storeName(f.store), "private", cfg.Allow != nil)
		running++
		go func() { errc <- server.ServeHTTP(ctx, ln, tr) }()
	}
	if f.udp != "" {
		secret := []byte(f.udpSecret)
		if ss, ok := store.(server.SecretSharer); ok && len(secret) == 0 {
			if secret, err = ss.SharedSecret(ctx); err != nil {
				return err
			}
		}
		us, err := server.NewUDPServer(tr, secret)
		if err != nil {
			return err
		}
		ua, err := net.ResolveUDPAddr("udp", f.udp)
		if err != nil {
			return fmt.Errorf("tracker: --udp: %w", err)
		}
		conn, err := net.ListenUDP("udp", ua)
		if err != nil {
			return fmt.Errorf("tracker: --udp: %w", err)
		}
		defer conn.Close()
		log.Info("tracker: UDP listening", "addr", conn.LocalAddr().String())
		running++
		go func() { errc <- us.Serve(ctx, conn) }()
	}
	running++
	go func() { errc <- tr.Run(ctx) }()

	var first error
	for range running {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
		cancel() // one part ending stops the others
	}
	log.Info("tracker: stopped")
	return first
}

// storeName hides credentials a redis URL may carry.
func storeName(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "redis://…" + s[i:]
	}
	return s
}
