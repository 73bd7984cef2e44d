package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/relay"
	"github.com/shoal-p2p/shoal/internal/session"
)

func init() {
	register(newGetCmd)
	register(newSeedCmd)
}

// swarmFlags are the options get and seed share.
type swarmFlags struct {
	listen       string
	peers        []string
	noDHT        bool
	dhtBootstrap string
	dhtListen    string
	dhtState     string
	upLimit      byteSize
	relays       []string
	behindNAT    bool
	findRelays   bool
	rendezvous   string
	portForward  bool
	downLimit    byteSize
	verbose      int
	waitGo       bool // shoal lab: start the torrent at end-of-file on stdin
}

func (f *swarmFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "listen", "", "TCP address to accept peers on (default :6881, or a free port if taken)")
	cmd.Flags().StringArrayVar(&f.peers, "peer", nil, "also connect to this peer, HOST:PORT (repeatable)")
	cmd.Flags().BoolVar(&f.noDHT, "no-dht", false, "do not use the DHT (peers come from trackers and --peer only)")
	cmd.Flags().StringVar(&f.dhtBootstrap, "dht-bootstrap", "", "DHT nodes to join through, HOST:PORT,... (default: the public routers)")
	cmd.Flags().StringVar(&f.dhtListen, "dht-listen", "", "UDP address of the DHT node (default: the --listen address)")
	cmd.Flags().StringVar(&f.dhtState, "dht-state", "", "file that keeps the DHT routing table across runs (default: in the user cache dir, only with the public bootstrap)")
	cmd.Flags().StringArrayVar(&f.relays, "relay", nil, "relay HOST:PORT (shoal relay) to be reachable through when behind a NAT (repeatable)")
	cmd.Flags().BoolVar(&f.portForward, "port-forward", false, "ask the LAN router to forward our port (NAT-PMP, UPnP-IGD); removed on exit")
	cmd.Flags().BoolVar(&f.behindNAT, "behind-nat", false, "with --relay or --find-relays: use the relays without testing whether peers can reach us directly;\nalso punch from the listen port when a peer introduces us to another (BEP 55 ut_holepunch)")
	cmd.Flags().BoolVar(&f.findRelays, "find-relays", false, fmt.Sprintf("find up to %d relays in the relay directory (at our public torrents' trackers and in the DHT;\nrelays list themselves with shoal relay --directory-tracker/--dht) and use them as --relay", relay.DefaultMaxRelays))
	cmd.Flags().StringVar(&f.rendezvous, "rendezvous", "", "hole-punching rendezvous HOST:PORT (shoal relay --rendezvous): upgrade connections that meet\nthrough a relay to direct ones when the other peer is a NATed shoal peer too (falls back to the relay)")
	cmd.Flags().Var(&f.upLimit, "upload-limit", "cap upload rate, bytes/s (suffixes K, M, G; 0 = unlimited)")
	cmd.Flags().Var(&f.downLimit, "download-limit", "cap download rate, bytes/s (suffixes K, M, G; 0 = unlimited)")
	cmd.Flags().CountVarP(&f.verbose, "verbose", "v", "log more (-v: info, -vv: debug)")
}

func (f *swarmFlags) logger() *slog.Logger {
	level := slog.LevelWarn
	switch {
	case f.verbose >= 2:
		level = slog.LevelDebug
	case f.verbose == 1:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newGetCmd() *cobra.Command {
	var f swarmFlags
	var out string
	var seed bool
	cmd := &cobra.Command{
		Use:   "get [flags] FILE.torrent|MAGNET",
		Short: "Download a torrent, verifying every piece",
		Long: `Download the content of a torrent into a folder (the result is DIR/<name>).

Peers come from the torrent's trackers (HTTP and UDP) and from --peer. Every piece
is checked against its SHA-1 hash before it counts as downloaded. Interrupt it (or
even kill it) and run the same command again: verified pieces are kept and the
download resumes where it stopped. Exit status 0 means the whole content is
present and verified. With --seed it then keeps uploading until interrupted.`,
		Example: `  shoal get -o ~/Downloads ubuntu.iso.torrent
  shoal get "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056"
  shoal get --peer 127.0.0.1:6881 --no-dht -o /tmp/out file.torrent
  shoal get --seed movie.torrent          # download, then seed until Ctrl-C
  shoal get --seed --behind-nat --find-relays movie.torrent   # behind a NAT: seed through relays found on its trackers/DHT`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := loadSource(args[0])
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("output folder: %w", err)
			}
			return runSwarm(cmd.Context(), src, out, &f, seed, false)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", ".", "folder to download into")
	cmd.Flags().BoolVar(&seed, "seed", false, "keep seeding after the download completes, until interrupted")
	f.add(cmd)
	// shoal lab starts every downloader before its go signal, as it does
	// libtorrent's, so process start-up is not part of the measured time.
	cmd.Flags().BoolVar(&f.waitGo, "wait-go", false, "print READY once listening, then start the download at end-of-file on stdin (used by shoal lab)")
	cmd.Flags().MarkHidden("wait-go")
	return cmd
}

func newSeedCmd() *cobra.Command {
	var f swarmFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "seed [flags] FILE.torrent",
		Short: "Verify local data and upload it to peers",
		Long: `Seed a torrent: check the data in DATA_DIR (the folder that holds the torrent's
file or top folder, DATA_DIR/<name>) against the piece hashes, then serve it to
peers until interrupted. shoal announces to the torrent's trackers and also
connects out to the peers they list.

Behind a NAT or firewall that peers cannot connect through, add --relay HOST:PORT
(a shoal relay you know) or --find-relays: shoal then looks for relays in the relay
directory at the torrent's trackers and in the DHT (relays list themselves there
with shoal relay --directory-tracker/--dht), probes them and uses up to 3, printing
"found relay ADDR via ..." for each; when none is found it says so and looks again
every few minutes. A found relay that stops working for 2 minutes is dropped and
another is looked for. --behind-nat uses the relays without first testing whether
peers can reach us directly.`,
		Example: `  shoal seed -d ~/Videos movie.torrent
  shoal seed --listen 127.0.0.1:6881 -d /srv/data release.torrent
  shoal seed --behind-nat --find-relays -d /srv/data release.torrent
  shoal seed --behind-nat --relay relay.example.org:7000 -d /srv/data release.torrent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := metainfo.Load(args[0])
			if err != nil {
				return err
			}
			return runSwarm(cmd.Context(), source{mi: mi}, dir, &f, true, true)
		},
	}
	cmd.Flags().StringVarP(&dir, "data", "d", ".", "folder that holds the torrent's content")
	f.add(cmd)
	return cmd
}

// source is what a swarm command starts from: a .torrent or a magnet link.
type source struct {
	mi     *metainfo.MetaInfo
	magnet *metainfo.Magnet
}

func loadSource(arg string) (source, error) {
	if strings.HasPrefix(arg, "magnet:") {
		m, err := metainfo.ParseMagnet(arg)
		if err != nil {
			return source{}, err
		}
		return source{magnet: m}, nil
	}
	mi, err := metainfo.Load(arg)
	if err != nil {
		return source{}, err
	}
	return source{mi: mi}, nil
}

// startDHT starts the DHT node get and seed use, unless --no-dht (or the
// torrent is private). Loopback and private bootstrap nodes mark a private
// network: such nodes are then allowed into the routing table.
func (f *swarmFlags) startDHT(ctx context.Context, tcpListen string, log *slog.Logger) (*dht.Server, error) {
	cfg := dht.Config{Listen: f.dhtListen, Logger: log.With("room", "dht"), StateFile: f.dhtState}
	if cfg.Listen == "" {
		cfg.Listen = tcpListen
		if cfg.Listen == "" {
			cfg.Listen = ":6881"
		}
	}
	if f.dhtBootstrap != "" {
		cfg.Bootstrap = []string{}
		for _, b := range strings.Split(f.dhtBootstrap, ",") {
			if b = strings.TrimSpace(b); b != "" {
				cfg.Bootstrap = append(cfg.Bootstrap, b)
				if ap, err := netip.ParseAddrPort(b); err == nil && (ap.Addr().IsLoopback() || ap.Addr().IsPrivate()) {
					cfg.AllowLoopback = true
				}
			}
		}
	} else if cfg.StateFile == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cfg.StateFile = filepath.Join(dir, "shoal", "dht.state")
			os.MkdirAll(filepath.Dir(cfg.StateFile), 0o755)
		}
	}
	if ap, err := netip.ParseAddrPort(cfg.Listen); err == nil && ap.Addr().IsLoopback() {
		cfg.AllowLoopback = true
	}
	d, err := dht.New(cfg)
	if err != nil {
		// the TCP port was free but the UDP one may not be: fall back to any port
		cfg.Listen = hostOnly(cfg.Listen) + ":0"
		if d, err = dht.New(cfg); err != nil {
			return nil, fmt.Errorf("dht: %w", err)
		}
	}
	go func() {
		if err := d.Start(ctx); err != nil && ctx.Err() == nil {
			log.Warn("dht stopped", "err", err)
		}
	}()
	return d, nil
}

// checkRelayFlags rejects --behind-nat without a way to get relays.
func (f *swarmFlags) checkRelayFlags() error {
	if f.behindNAT && len(f.relays) == 0 && !f.findRelays {
		return errors.New("--behind-nat needs --relay HOST:PORT or --find-relays")
	}
	return nil
}

// useRelays starts the relays given by --relay and, with --find-relays, the
// lookup of more in the relay directory (its findings are printed).
func (f *swarmFlags) useRelays(ctx context.Context, client *session.Client) error {
	if f.findRelays {
		return client.FindRelays(ctx, f.relays, relay.DefaultMaxRelays, f.behindNAT, func(msg string) {
			fmt.Fprintln(os.Stderr, msg)
		})
	}
	if len(f.relays) > 0 {
		if _, err := client.UseRelays(ctx, f.relays, f.behindNAT); err != nil {
			return err
		}
	}
	return nil
}

func hostOnly(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// runSwarm adds one torrent to a new session, shows progress, and returns when
// it is complete (or, when seeding, when ctx ends).
func runSwarm(ctx context.Context, src source, root string, f *swarmFlags, seed, mustBeComplete bool) error {
	log := f.logger()
	if err := f.checkRelayFlags(); err != nil {
		return err
	}
	term := isTerminal(os.Stderr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := session.Config{Listen: f.listen, Logger: log, UploadRate: int64(f.upLimit), DownloadRate: int64(f.downLimit), PortForward: f.portForward, Rendezvous: f.rendezvous,
		PunchPeers: f.behindNAT || f.rendezvous != ""}
	client, err := session.NewClient(cfg)
	if err != nil {
		return err
	}
	private := src.mi != nil && src.mi.Info.Private
	if !f.noDHT && !private {
		d, err := f.startDHT(ctx, client.Addr().String(), log)
		if err != nil {
			return err
		}
		defer d.Close()
		client.SetDHT(d)
	}
	if src.magnet != nil {
		fmt.Fprintf(os.Stderr, "fetching metadata for %s from peers...\n", src.magnet.InfoHash)
	}

	var verifyProgress func(done, total int64)
	if term {
		verifyProgress = func(done, total int64) {
			fmt.Fprintf(os.Stderr, "\rchecking data %s ", bar(done, total, 30))
		}
	}
	if f.waitGo {
		fmt.Fprintln(os.Stderr, "READY")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			return fmt.Errorf("waiting for go: %w", err)
		}
	}
	start := time.Now()
	opts := session.Options{Root: root, Peers: f.peers, VerifyProgress: verifyProgress}
	var t *session.Torrent
	if src.magnet != nil {
		t, err = client.AddMagnet(ctx, src.magnet, opts)
		if err != nil && ctx.Err() != nil {
			return &exitError{code: 130, err: fmt.Errorf("interrupted while fetching metadata: %w", err)}
		}
	} else {
		t, err = client.Add(ctx, src.mi, opts)
	}
	if term && verifyProgress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	go client.Run(ctx) // accept peers once the torrent is ready to answer them
	if err := f.useRelays(ctx, client); err != nil {
		return err
	}
	st := t.Stats()
	if mustBeComplete && st.Have < st.NumPieces {
		cancel()
		<-t.Stopped()
		return fmt.Errorf("data for %q in %s is incomplete: %d of %d pieces verified (to finish it: shoal get --seed -o %s FILE.torrent)",
			src.mi.Info.Name, root, st.Have, st.NumPieces, root)
	}
	mi := t.MetaInfo()
	fmt.Fprintf(os.Stderr, "%s  %s  %s, %d pieces, listening on %s\n", mi.Info.Name, mi.InfoHash, humanBytes(mi.Info.TotalLength()), st.NumPieces, client.Addr())
	if st.ResumedPieces > 0 && !mustBeComplete {
		fmt.Fprintf(os.Stderr, "resuming: %d of %d pieces already verified\n", st.ResumedPieces, st.NumPieces)
	}

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var progressOut io.Writer = os.Stderr
	done := t.Done()
	completed := false
	for {
		select {
		case <-done:
			done = nil
			completed = true
			if term {
				fmt.Fprint(progressOut, "\r\033[K")
			}
			if !mustBeComplete {
				printSummary(t.Stats(), time.Since(start))
			}
			if !seed {
				cancel()
				<-t.Stopped()
				return nil
			}
			fmt.Fprintln(os.Stderr, "seeding; press Ctrl-C to stop")
		case <-t.Stopped():
			if st := t.Stats(); st.Err != nil {
				return fmt.Errorf("torrent stopped: %w", st.Err)
			}
			if ctx.Err() != nil {
				return interrupted(completed, t.Stats(), start)
			}
			return errors.New("torrent stopped")
		case <-ctx.Done():
			<-t.Stopped()
			return interrupted(completed, t.Stats(), start)
		case <-tick.C:
			if term {
				fmt.Fprintf(progressOut, "\r\033[K%s", progressLine(t.Stats(), completed))
			}
		}
	}
}

func interrupted(completed bool, st session.Stats, start time.Time) error {
	if isTerminal(os.Stderr) {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if completed {
		fmt.Fprintf(os.Stderr, "stopped seeding: uploaded %d bytes\n", st.Uploaded)
		return nil
	}
	fmt.Fprintf(os.Stderr, "interrupted: %d of %d pieces verified (%s); run the same command to resume\n",
		st.Have, st.NumPieces, percent(st))
	return &exitError{code: 130, err: errors.New("interrupted before the download completed")}
}

func percent(st session.Stats) string {
	if st.Size == 0 {
		return "100.0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(st.Size-st.Left)/float64(st.Size))
}

func progressLine(st session.Stats, seeding bool) string {
	eta := "-"
	if st.DownRate > 0 && st.Left > 0 {
		eta = humanDuration(time.Duration(float64(st.Left) / st.DownRate * float64(time.Second)))
	}
	if st.Err != nil {
		return fmt.Sprintf("%6s  paused, retrying: %v", percent(st), st.Err)
	}
	if seeding {
		return fmt.Sprintf("seeding  up %s  uploaded %s  peers %d", humanRate(st.UpRate), humanBytes(st.Uploaded), st.Peers)
	}
	return fmt.Sprintf("%6s  down %s  up %s  peers %d (%d seeds)  eta %s",
		percent(st), humanRate(st.DownRate), humanRate(st.UpRate), st.Peers, st.Seeds, eta)
}

// printSummary prints the one line every finished download ends with
// (scripts parse it: keep the field order).
func printSummary(st session.Stats, elapsed time.Duration) {
	secs := elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(st.Downloaded) / secs
	}
	fmt.Fprintf(os.Stderr, "done: %s %s in %.2fs, down %s, up %s, uploaded %d bytes, peers %d, downloaded %d bytes, webseed %d bytes, wasted %d bytes\n",
		st.Name, humanBytes(st.Size), secs, humanRate(rate), humanRate(float64(st.Uploaded)/max(secs, 1e-9)), st.Uploaded,
		st.PeakPeers, st.Downloaded, st.WebseedBytes, st.WastedBytes)
}
