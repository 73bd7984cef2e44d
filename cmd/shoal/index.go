package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/internal/session"
)

func init() { register(newIndexCmd) }

// dhtSampler adapts *dht.Server to catalog.Sampler.
type dhtSampler struct{ s *dht.Server }

func (d dhtSampler) Sample(ctx context.Context, addr netip.AddrPort) ([][20]byte, []netip.AddrPort, error) {
	var target [20]byte
	rand.Read(target[:])
	hs, nodes, _, _, err := d.s.SampleInfohashes(ctx, addr, target)
	return hs, nodes, err
}

func (d dhtSampler) Nodes() []netip.AddrPort {
	ns := d.s.Nodes()
	out := make([]netip.AddrPort, len(ns))
	for i, n := range ns {
		out[i] = n.Addr
	}
	return out
}

func newIndexCmd() *cobra.Command {
	var (
		db, bootstrap, dhtListen, listen string
		rate                             float64
		maxN, parallel                   int
		idleExit, verbose                bool
	)
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Build a local search index from the DHT (BEP 51 samples, BEP 9 metadata)",
		Long: `Walk the DHT asking nodes for samples of the info-hashes they store
(BEP 51 sample_infohashes), fetch each torrent's metadata from its peers
(BEP 9), and index name, files and size in --db for 'shoal search --index'.
Queries are rate-limited (--rate); sampled hashes are kept in the database, so
an interrupted run resumes where it stopped.`,
		Example: `  # index a private DHT on this machine, stop when nothing is left
  shoal index --dht-bootstrap 127.0.0.1:26881 --db index.db --idle-exit
  shoal search --index index.db "big buck bunny"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if db == "" {
				dir, err := os.UserCacheDir()
				if err != nil {
					return fmt.Errorf("index: no --db and no cache directory: %w", err)
				}
				db = filepath.Join(dir, "shoal", "index.db")
				if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
					return fmt.Errorf("index: %w", err)
				}
			}
			if rate <= 0 || rate > 1000 {
				return fmt.Errorf("index: --rate %v: want between 0 and 1000 per second", rate)
			}
			store, err := catalog.OpenSQLite(ctx, db)
			if err != nil {
				return err
			}
			defer store.Close()

			dcfg := dht.Config{Listen: dhtListen, Logger: log.With("room", "dht")}
			if bootstrap != "" {
				dcfg.Bootstrap = []string{}
				for _, b := range strings.Split(bootstrap, ",") {
					if b = strings.TrimSpace(b); b != "" {
						dcfg.Bootstrap = append(dcfg.Bootstrap, b)
						if ap, err := netip.ParseAddrPort(b); err == nil && (ap.Addr().IsLoopback() || ap.Addr().IsPrivate()) {
							dcfg.AllowLoopback = true
						}
					}
				}
			}
			d, err := dht.New(dcfg)
			if err != nil {
				return fmt.Errorf("index: dht: %w", err)
			}
			defer d.Close()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			dhtDone := make(chan struct{})
			go func() {
				defer close(dhtDone)
				if err := d.Start(ctx); err != nil && ctx.Err() == nil {
					log.Warn("dht stopped", "err", err)
				}
			}()
			defer func() { cancel(); <-dhtDone }()
			client, err := session.NewClient(session.Config{Listen: listen, Logger: log.With("room", "session")})
			if err != nil {
				return err
			}
			client.SetDHT(d)
			clientDone := make(chan struct{})
			go func() { defer close(clientDone); client.Run(ctx) }()
			defer func() { cancel(); <-clientDone }()

			// Wait (bounded) for the routing table to fill from the bootstrap nodes.
			for deadline := time.Now().Add(20 * time.Second); d.NumNodes() == 0 && time.Now().Before(deadline); {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
			if d.NumNodes() == 0 {
				return fmt.Errorf("index: no DHT node answered (bootstrap %q)", bootstrap)
			}
			out := cmd.ErrOrStderr()
			term := isTerminal(os.Stderr)
			last := time.Time{}
			ix, err := catalog.NewIndexer(catalog.IndexerConfig{
				Store: store, Sampler: dhtSampler{d}, Fetcher: client, Rate: rate, Max: maxN, Parallel: parallel,
				StopWhenIdle: idleExit, Logger: log,
				Progress: func(p catalog.IndexProgress) {
					if time.Since(last) < time.Second {
						return
					}
					last = time.Now()
					line := fmt.Sprintf("nodes %d  sampled %d  pending %d  fetching %d  indexed %d  failed %d",
						p.NodesQueried, p.Sampled, p.Pending, p.Running, p.Indexed, p.Failed)
					if term {
						fmt.Fprintf(out, "\r%s ", line)
					} else {
						fmt.Fprintln(out, line)
					}
				},
			})
			if err != nil {
				return err
			}
			if err := ix.Run(ctx); err != nil {
				return err
			}
			pending, done, failed, err := store.SampleCounts(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}
			if term {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "index %s: %d indexed, %d pending, %d given up\n", db, done, pending, failed)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "index database (default: <user cache dir>/shoal/index.db)")
	cmd.Flags().StringVar(&bootstrap, "dht-bootstrap", "", "comma-separated HOST:PORT bootstrap nodes (default: the public routers)")
	cmd.Flags().StringVar(&dhtListen, "dht-listen", ":0", "UDP address of the DHT node")
	cmd.Flags().StringVar(&listen, "listen", ":0", "TCP address for peer connections")
	cmd.Flags().Float64Var(&rate, "rate", 5, "DHT queries and metadata fetches started per second")
	cmd.Flags().IntVar(&maxN, "max", 0, "stop after indexing this many torrents (0: no limit)")
	cmd.Flags().IntVar(&parallel, "parallel", 4, "metadata fetches at once")
	cmd.Flags().BoolVar(&idleExit, "idle-exit", false, "stop when every reachable node was sampled and nothing is pending")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every query")
	return cmd
}
