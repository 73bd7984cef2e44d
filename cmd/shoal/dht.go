package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/dht"
)

func init() { register(newDHTCmd) }

// dhtFlags are the flags shared by `shoal dht` and its subcommands.
type dhtFlags struct {
	listen        string
	bootstrap     string
	state         string
	allowLoopback bool
}

func (f *dhtFlags) config(log *slog.Logger) dht.Config {
	cfg := dht.Config{Listen: f.listen, StateFile: f.state, AllowLoopback: f.allowLoopback, Logger: log}
	if f.bootstrap != "" {
		cfg.Bootstrap = []string{}
		for _, b := range strings.Split(f.bootstrap, ",") {
			if b = strings.TrimSpace(b); b != "" {
				cfg.Bootstrap = append(cfg.Bootstrap, b)
			}
		}
	}
	return cfg
}

func newDHTCmd() *cobra.Command {
	f := &dhtFlags{}
	cmd := &cobra.Command{
		Use:   "dht",
		Short: "Run a standalone mainline DHT node (BEP 5)",
		Long: `Run a DHT node until interrupted: a bootstrap node for a private network, or a
long-lived public node. The routing table is saved to --state on exit and
reloaded at start, so a restart rejoins without bootstrap nodes.
Without --bootstrap the public routers are used.`,
		Example: `  # a bootstrap node for a private network on this machine
  shoal dht --listen 127.0.0.1:26881 --allow-loopback --bootstrap 127.0.0.1:26882
  # a public node that remembers its table
  shoal dht --listen :6881 --state ~/.shoal/dht.json
  shoal dht ping 127.0.0.1:26881
  shoal dht get-peers --allow-loopback --bootstrap 127.0.0.1:26881 0123456789abcdef0123456789abcdef01234567`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if f.listen == "" {
				f.listen = ":6881"
			}
			s, err := dht.New(f.config(log))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			done := make(chan error, 1)
			go func() { done <- s.Start(ctx) }()
			fmt.Fprintf(cmd.OutOrStdout(), "dht node %x listening on %s\n", s.ID(), s.Addr())
			tick := time.NewTicker(30 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					st := s.Stats()
					log.Info("dht", "nodes", s.NumNodes(), "queries_in", st.QueriesIn, "queries_out", st.QueriesOut,
						"timeouts", st.Timeouts, "rate_limited", st.RateLimited)
				case err := <-done:
					cerr := s.Close()
					if err != nil {
						return err
					}
					return cerr
				}
			}
		},
	}
	addDHTFlags(cmd, f)
	cmd.AddCommand(newDHTPingCmd(), newDHTGetPeersCmd())
	return cmd
}

func addDHTFlags(cmd *cobra.Command, f *dhtFlags) {
	cmd.Flags().StringVar(&f.listen, "listen", "", "UDP address to listen on (default :6881 for the node, 127.0.0.1:0 / :0 for queries)")
	cmd.Flags().StringVar(&f.bootstrap, "bootstrap", "", "bootstrap nodes HOST:PORT,... (default: the public routers)")
	cmd.Flags().StringVar(&f.state, "state", "", "file the routing table is saved to and loaded from")
	cmd.Flags().BoolVar(&f.allowLoopback, "allow-loopback", false, "accept loopback and private-network nodes (tests, private networks)")
}

// quietNode starts a short-lived node for a one-shot query.
func quietNode(f *dhtFlags, target netip.Addr) (*dht.Server, error) {
	if f.listen == "" {
		f.listen = ":0"
		if target.IsValid() && target.Unmap().Is4() {
			f.listen = "0.0.0.0:0"
		}
	}
	if target.IsValid() && (target.IsLoopback() || target.IsPrivate()) {
		f.allowLoopback = true
	}
	return dht.New(f.config(nil))
}

func newDHTPingCmd() *cobra.Command {
	f := &dhtFlags{}
	cmd := &cobra.Command{
		Use:     "ping HOST:PORT",
		Short:   "Ping a DHT node and print its id",
		Example: `  shoal dht ping 127.0.0.1:26881`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddrPort(args[0])
			if err != nil {
				return fmt.Errorf("dht ping: %q is not IP:PORT: %w", args[0], err)
			}
			addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
			s, err := quietNode(f, addr.Addr())
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			id, err := s.Ping(ctx, addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s id %x in %v\n", addr, id, time.Since(start).Round(time.Microsecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&f.listen, "listen", "", "UDP address to send from")
	return cmd
}

func newDHTGetPeersCmd() *cobra.Command {
	f := &dhtFlags{}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get-peers INFOHASH",
		Short: "Look up the peers of an info-hash (40 hex digits) and print one per line",
		Example: `  shoal dht get-peers --bootstrap 127.0.0.1:26881 --allow-loopback 0123456789abcdef0123456789abcdef01234567
  shoal dht get-peers 0123456789abcdef0123456789abcdef01234567   # via the public routers`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := hex.DecodeString(args[0])
			if err != nil || len(b) != 20 {
				return fmt.Errorf("dht get-peers: %q is not a 40-digit hex info-hash", args[0])
			}
			if f.listen == "" {
				f.listen = ":0"
			}
			s, err := dht.New(f.config(nil))
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := s.Bootstrap(ctx); err != nil && s.NumNodes() == 0 {
				return fmt.Errorf("dht get-peers: bootstrap: %w", err)
			}
			peers, err := s.GetPeers(ctx, [20]byte(b))
			if err != nil {
				return err
			}
			for _, p := range peers {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(peers) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no peers found")
			}
			return nil
		},
	}
	addDHTFlags(cmd, f)
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}
