package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/lab"
)

func init() { register(newLabCmd) }

// labFlags are the options shared by `shoal lab` and `shoal lab sweep`.
type labFlags struct {
	n                                   int
	clients, seeder, baseline           string
	fileMiB, pieceKiB                   int64
	up, server, down                    float64
	peerUp                              string
	noDown, staticARP, quiet            bool
	debug                               bool
	mtu, leave                          int
	leaveAt                             float64
	timeout                             time.Duration
	python, logs, jsonOut, tag, profile string
}

func (f *labFlags) add(cmd *cobra.Command, sweep bool) {
	fl := cmd.Flags()
	if !sweep {
		fl.IntVar(&f.n, "n", 4, "number of peer hosts")
		fl.StringVar(&f.clients, "clients", "shoal", "downloaders on the peer hosts: shoal, libtorrent, http (a comma list runs each in turn)")
		fl.StringVar(&f.baseline, "baseline", "", "also measure this baseline after the swarm: http (N HTTP clients, one shaped HTTP server)")
		fl.StringVar(&f.jsonOut, "json", "", "write the result(s) as JSON to this file")
		fl.StringVar(&f.logs, "logs", "", "log folder (default /tmp/shoal-lab-logs/<id>)")
		fl.StringVar(&f.profile, "profile", "", "write a Go CPU profile of every shoal process into `DIR` (shoal-n4-seeder.pprof, shoal-n4-p1.pprof, ...; read them with go tool pprof)")
	}
	fl.StringVar(&f.seeder, "seeder", "", "seeder on the server host: shoal or libtorrent (default: same kind as the clients)")
	fl.Int64Var(&f.fileMiB, "file-mib", 64, "file size F in MiB")
	fl.Int64Var(&f.pieceKiB, "piece-kib", 256, "piece length in KiB")
	fl.Float64Var(&f.up, "up-mbit", 16, "peer upload u in Mbit/s")
	fl.StringVar(&f.peerUp, "peer-up", "", "heterogeneous peer uploads in Mbit/s, e.g. 8,16,32 (cycled over the peers)")
	fl.Float64Var(&f.server, "server-mbit", 0, "server upload u_s in Mbit/s (default 4u)")
	fl.Float64Var(&f.down, "down-mbit", 0, "peer download d in Mbit/s (default 10u)")
	fl.BoolVar(&f.noDown, "no-down-shaping", false, "leave the peers' downloads unshaped")
	fl.IntVar(&f.mtu, "mtu", 1500, "MTU of every link (9000 = jumbo frames, ~6x fewer packets, for large N)")
	fl.BoolVar(&f.staticARP, "static-arp", false, "permanent neighbour entries (no ARP storm at start; use for N > ~32)")
	fl.IntVar(&f.leave, "leave", 0, "this many peers (the last ones) leave mid-run; T counts the others")
	fl.Float64Var(&f.leaveAt, "leave-at", 0.5, "when peers leave, as a fraction of d_P2P after the go signal")
	fl.DurationVar(&f.timeout, "timeout", 0, "give up a run after this long (default 10 x bound + 60s)")
	fl.StringVar(&f.python, "python", "/usr/bin/python3", "python with the libtorrent module (Debian python3-libtorrent)")
	fl.StringVar(&f.tag, "tag", "", "label stored with the results")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the result lines")
	fl.BoolVar(&f.debug, "debug", false, "shoal processes log at debug level (a line per second per torrent: rates, choking, queues) into the log folder")
}

func (f *labFlags) config() (lab.Config, error) {
	c := lab.Config{
		N: f.n, Seeder: f.seeder, FileBytes: f.fileMiB << 20, PieceBytes: f.pieceKiB << 10,
		UpMbit: f.up, ServerMbit: f.server, DownMbit: f.down, NoDown: f.noDown, MTU: f.mtu,
		StaticARP: f.staticARP, Leave: f.leave, LeaveAt: f.leaveAt, Timeout: f.timeout,
		Python: f.python, LogDir: f.logs, Tag: f.tag, Log: os.Stderr, Debug: f.debug, ProfileDir: f.profile,
	}
	if f.fileMiB <= 0 || f.pieceKiB <= 0 {
		return c, errors.New("--file-mib and --piece-kib must be positive")
	}
	if f.quiet {
		c.Log = nil
	}
	if f.peerUp != "" {
		rates, err := lab.ParseRates(f.peerUp)
		if err != nil {
			return c, fmt.Errorf("--peer-up: %w", err)
		}
		c.PeerUpMbit = rates
	}
	return c, nil
}

func newLabCmd() *cobra.Command {
	var f labFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Measure a swarm in network namespaces against d_P2P (needs root)",
		Long: `lab builds a swarm of network namespaces on this machine: a server host and
N peer hosts on one bridge, addresses in 198.18.0.0/15, every host's upload (and
download) shaped with tc tbf, no route toward the machine's real interfaces. It
runs shoal's tracker and a seeder on the server and a downloader on each peer,
gives a common go signal, and waits until every peer holds the verified file.
It reports the time T, the bound d_P2P = max(F/u_s, F/d_min, N F/(u_s + Σu_i)),
the ratio T/d_P2P and d_cs = max(N F/u_s, F/d_min), then removes every
namespace, process and mount it made (also on Ctrl-C / SIGTERM).

When the aggregate upload term is the bound, the report also says where T
went: the bytes every uplink carried in units of N F (against the framing
floor, with the share of frames below full size, which at MTU 1500 are mostly
pure ACKs, estimated from frame counts), the time those bytes need at the full
aggregate rate, and the uplink capacity left unused before the first peer
finished (the ramp) and after it (the tail), and the share of frames the
full upload queues dropped.

The last line is machine-readable: n=N seconds=S d_p2p=B ratio=R (when several
client kinds run, one such line per kind, followed by clients=KIND).

Reference configuration: F = 64 MiB, u = 16 Mbit/s, u_s = 4u, d = 10u, 256 KiB
pieces, MTU 1500. The aggregate shaped rate costs CPU: keep u_s + N u under
~300 Mbit/s at MTU 1500, or use --mtu 9000 for larger N.`,
		Example: `  sudo shoal lab --n 8
  sudo shoal lab --n 8 --clients libtorrent --json lt.json
  sudo shoal lab --n 8 --clients shoal,libtorrent --baseline http
  sudo shoal lab --n 8 --peer-up 8,16,32 --leave 2
  sudo shoal lab sweep --n 2,4,8,16,24 --out results/
  sudo shoal lab cleanup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kinds, err := lab.ParseClients(f.clients)
			if err != nil {
				return fmt.Errorf("--clients: %w", err)
			}
			if f.baseline != "" {
				if f.baseline != lab.ClientsHTTP {
					return fmt.Errorf("--baseline %q: only http is known", f.baseline)
				}
				if kinds, err = lab.ParseClients(f.clients + "," + f.baseline); err != nil {
					return err
				}
			}
			base, err := f.config()
			if err != nil {
				return err
			}
			var results []*lab.Result
			for _, k := range kinds {
				c := base
				c.Clients = k
				if len(kinds) > 1 && c.LogDir != "" {
					c.LogDir = c.LogDir + "/" + k
				}
				res, err := lab.Run(cmd.Context(), c)
				if err != nil {
					return err
				}
				if !f.quiet {
					fmt.Fprintln(os.Stderr, res.Summary())
				}
				results = append(results, res)
			}
			if f.jsonOut != "" {
				var v any = results
				if len(results) == 1 {
					v = results[0]
				}
				j, _ := json.MarshalIndent(v, "", "  ")
				if err := os.WriteFile(f.jsonOut, append(j, '\n'), 0o644); err != nil {
					return fmt.Errorf("--json: %w", err)
				}
			}
			for _, r := range results {
				if len(results) == 1 {
					fmt.Println(r.Line())
				} else {
					fmt.Printf("%s clients=%s\n", r.Line(), r.Clients)
				}
			}
			return nil
		},
	}
	f.add(cmd, false)
	cmd.AddCommand(newLabSweepCmd(), newLabCleanupCmd(), newLabPlotCmd())
	cmd.AddCommand(labHelperCmds()...)
	return cmd
}

func newLabSweepCmd() *cobra.Command {
	var f labFlags
	var ns, clients, out string
	var reps int
	cmd := &cobra.Command{
		Use:   "sweep --n 2,4,8 --out DIR",
		Short: "Measure distribution time against N and plot it with both bounds",
		Long: `sweep runs ` + "`shoal lab`" + ` for every N and every client kind, one run after the
other, and writes DIR/results.csv (rewritten after each run) and the figure
"Client-Server vs. P2P" as DIR/distribution.png and DIR/distribution.svg:
measured shoal, libtorrent and HTTP times and the bounds d_P2P and d_cs.
HTTP runs last about N x 8.4 s each in the reference configuration.`,
		Example: `  sudo shoal lab sweep --n 2,4,8,16,24 --out results/
  sudo shoal lab sweep --n 4,8 --clients shoal,libtorrent --reps 3 --out r/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nl, err := lab.ParseInts(ns)
			if err != nil {
				return fmt.Errorf("--n: %w", err)
			}
			kinds, err := lab.ParseClients(clients)
			if err != nil {
				return fmt.Errorf("--clients: %w", err)
			}
			if out == "" {
				return errors.New("--out is required")
			}
			base, err := f.config()
			if err != nil {
				return err
			}
			rs, err := lab.Sweep(cmd.Context(), lab.SweepConfig{Base: base, Ns: nl, Clients: kinds, Reps: reps, Out: out})
			fmt.Fprintf(os.Stderr, "sweep: %d runs written to %s/results.csv, figure %s/distribution.{png,svg}\n", len(rs), out, out)
			return err
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&ns, "n", "2,4,8,16,24", "peer counts, comma-separated")
	cmd.Flags().StringVar(&clients, "clients", "shoal,libtorrent,http", "client kinds to measure at each N")
	cmd.Flags().IntVar(&reps, "reps", 1, "runs per point (the figure shows the mean)")
	cmd.Flags().StringVar(&out, "out", "", "output folder")
	return cmd
}

func newLabPlotCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plot RESULTS.csv OUT.png|OUT.svg...",
		Short: "Redraw the sweep figure from a results.csv",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			rs, err := lab.ReadCSV(fh)
			if err != nil {
				return err
			}
			return lab.Plot(rs, lab.PlotTitle, args[1:]...)
		},
	}
}

func newLabCleanupCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove namespaces and mounts left by a lab that was killed",
		Long: `cleanup removes lab namespaces (/run/netns/shl<pid>-*), killing what still
runs inside them, and lab tmpfs mounts (/tmp/shoal-lab-<pid>) whose lab process
is gone. With --all it also removes those of labs that still run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ls, err := lab.FindLeftovers()
			if err != nil {
				return err
			}
			var errs []error
			removed := 0
			for _, l := range ls {
				if l.Live && !all {
					fmt.Fprintf(os.Stderr, "skip %s: lab process %d still runs (use --all)\n", l.Name, l.PID)
					continue
				}
				if err := lab.RemoveLeftover(l); err != nil {
					errs = append(errs, err)
					continue
				}
				removed++
				fmt.Fprintf(os.Stderr, "removed %s\n", l.Name)
			}
			fmt.Fprintf(os.Stderr, "cleanup: removed %d of %d\n", removed, len(ls))
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove leftovers of labs that are still running")
	return cmd
}

// labHelperCmds are run by the lab inside its namespaces; hidden from help.
func labHelperCmds() []*cobra.Command {
	var listen, file string
	httpServe := &cobra.Command{
		Use: "http-serve", Hidden: true, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return lab.HTTPServe(cmd.Context(), listen, file) },
	}
	httpServe.Flags().StringVar(&listen, "listen", "", "address")
	httpServe.Flags().StringVar(&file, "file", "", "file to serve")
	var url, out string
	var waitGo bool
	httpGet := &cobra.Command{
		Use: "http-get", Hidden: true, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return lab.HTTPGet(cmd.Context(), url, out, waitGo) },
	}
	httpGet.Flags().StringVar(&url, "url", "", "URL")
	httpGet.Flags().StringVarP(&out, "output", "o", "-", "output file")
	httpGet.Flags().BoolVar(&waitGo, "wait-go", false, "wait for end-of-file on stdin first")
	var announce, ih string
	var timeout time.Duration
	waitSeeded := &cobra.Command{
		Use: "wait-seeded", Hidden: true, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := hex.DecodeString(ih)
			if err != nil || len(h) != 20 {
				return fmt.Errorf("--info-hash %q: want 40 hex digits", ih)
			}
			return lab.WaitSeeded(cmd.Context(), announce, h, timeout)
		},
	}
	waitSeeded.Flags().StringVar(&announce, "announce", "", "announce URL")
	waitSeeded.Flags().StringVar(&ih, "info-hash", "", "hex info-hash")
	waitSeeded.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after")
	return []*cobra.Command{httpServe, httpGet, waitSeeded}
}
