package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/dht"
	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/relay"
	"github.com/shoal-p2p/shoal/internal/tracker"
)

func init() { register(newRelayCmd) }

type relayFlags struct {
	listen, ports, publicIP     string
	maxPeers, maxConns, perPeer int
	peerRate, totalRate         string
	noAnnounce                  bool
	verbose                     bool
	rendezvous                  string
	statsEvery                  time.Duration
	directoryTrackers           []string
	dht                         bool
	dhtListen, dhtState         string
	dhtBootstrap                []string
}

func newRelayCmd() *cobra.Command {
	var f relayFlags
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "run a relay that makes peers behind NATs reachable",
		Long: `relay runs on a public host and makes peers that cannot accept connections
(behind a NAT or a firewall) reachable by any BitTorrent client.

A NATed shoal peer (shoal get/seed --relay HOST:PORT) keeps a control connection to
the relay's --listen port. The relay gives it a public port of its own from --ports
and announces RELAY_IP:PORT to the peer's trackers on its behalf (trackers list the
address an announce comes from, so the relay's address is what they hand out). When
a client connects to that port and sends a BitTorrent handshake for one of the
peer's torrents, the relay asks the peer for a data connection and splices the two.

Quotas: --max-peers peers at once (one port each), --max-conns spliced connections
in total and --max-conns-per-peer per peer; --peer-rate and --total-rate cap the
bytes per second (both directions together; suffixes k, M, G = 1024-based;
0 = unlimited). Memory is bounded: each splice holds two 32 KiB buffers.

With --rendezvous the relay also runs a hole-punching rendezvous: two NATed shoal
peers that meet through the relay and both pass --rendezvous to get/seed try to
upgrade to a direct connection (TCP simultaneous open), so the bulk of the bytes
bypasses the relay; when punching fails (e.g. a NAT that randomises ports) they
keep using the relay.

Relay directory: peers started with --find-relays find relays without being told
their address. A relay lists itself under the well-known info-hash
a508504eac990162d675744e865c6adb6b7a6ed8 (sha1 of "shoal relay directory v1"):
--directory-tracker URL (repeatable) announces the relay's --listen port there as a
seed (again every interval, "stopped" on exit), and --dht runs a DHT node that
announces it into the mainline DHT every 15 minutes. Peers look at their torrents'
trackers and in the DHT, so list the relay at trackers your users' torrents use.
Trackers and DHT nodes record the address an announce comes from: announce from
the address peers reach the relay at. With --dht the relay also announces each
relayed peer's torrents into the DHT with the peer's public port on the relay, so
trackerless downloaders find NATed peers too (--no-announce turns that off).`,
		Example: `  shoal relay --listen :7000 --ports 30000-30100
  shoal relay --listen 198.18.100.10:7000 --ports 30000-30009 --max-peers 10 --peer-rate 4M --total-rate 20M
  # on the NATed host:
  shoal seed --relay relay.example.org:7000 --behind-nat -d /srv/data release.torrent
  # with hole punching:
  shoal relay --listen :7000 --rendezvous :7001
  shoal seed --relay relay.example.org:7000 --behind-nat --rendezvous relay.example.org:7001 -d /srv/data release.torrent
  shoal get --rendezvous relay.example.org:7001 release.torrent
  # a relay that peers find by themselves (shoal seed --behind-nat --find-relays ...):
  shoal relay --listen :7000 --directory-tracker http://tracker.example.org:6969/announce --dht
  # a private test network on one machine:
  shoal relay --listen 127.0.0.1:7000 --ports 30000-30009 --directory-tracker http://127.0.0.1:6969/announce \
      --dht --dht-bootstrap 127.0.0.1:26881`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRelay(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", ":7000", "main port: where NATed peers connect (control and data connections)")
	fl.StringVar(&f.ports, "ports", "30000-30100", "range of public ports, one per relayed peer, LOW-HIGH")
	fl.StringVar(&f.publicIP, "public-ip", "", "address to advertise (default: the address each peer connected to)")
	fl.IntVar(&f.maxPeers, "max-peers", relay.DefaultMaxPeers, "relayed peers at once")
	fl.IntVar(&f.maxConns, "max-conns", relay.DefaultMaxConns, "spliced connections in total")
	fl.IntVar(&f.perPeer, "max-conns-per-peer", relay.DefaultMaxConnsPerPeer, "spliced connections per relayed peer")
	fl.StringVar(&f.peerRate, "peer-rate", "8M", "bytes per second per relayed peer (0 = unlimited)")
	fl.StringVar(&f.totalRate, "total-rate", "64M", "bytes per second for the whole relay (0 = unlimited)")
	fl.BoolVar(&f.noAnnounce, "no-announce", false, "do not announce relayed peers to their trackers (nor, with --dht, into the DHT)")
	fl.StringArrayVar(&f.directoryTrackers, "directory-tracker", nil, "list this relay at this tracker URL (the relay directory that --find-relays peers look in; repeatable)")
	fl.BoolVar(&f.dht, "dht", false, "run a DHT node: list this relay in the DHT and announce relayed peers' torrents there")
	fl.StringVar(&f.dhtListen, "dht-listen", "", "UDP address of the DHT node (default: the --listen address)")
	fl.StringArrayVar(&f.dhtBootstrap, "dht-bootstrap", nil, "DHT nodes HOST:PORT to join through (repeatable or comma-separated; default: the public routers)")
	fl.StringVar(&f.dhtState, "dht-state", "", "file that keeps the DHT routing table across runs")
	fl.StringVar(&f.rendezvous, "rendezvous", "", "also run a hole-punching rendezvous on this HOST:PORT (e.g. :7001), so two NATed shoal peers\nthat meet through the relay can upgrade to a direct connection (shoal get/seed --rendezvous)")
	fl.DurationVar(&f.statsEvery, "stats-every", time.Minute, "how often to log the relay's counters (they are also logged on exit)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func runRelay(ctx context.Context, f relayFlags) error {
	lo, hi, err := parsePortRange(f.ports)
	if err != nil {
		return err
	}
	cfg := relay.Config{
		Listen: f.listen, PortMin: lo, PortMax: hi, MaxPeers: f.maxPeers, MaxConns: f.maxConns,
		MaxConnsPerPeer: f.perPeer, NoAnnounce: f.noAnnounce,
	}
	if f.maxPeers <= 0 || f.maxConns <= 0 || f.perPeer <= 0 {
		return fmt.Errorf("relay: --max-peers, --max-conns and --max-conns-per-peer must be positive")
	}
	if cfg.PeerRate, err = parseRate("--peer-rate", f.peerRate); err != nil {
		return err
	}
	if cfg.TotalRate, err = parseRate("--total-rate", f.totalRate); err != nil {
		return err
	}
	if f.publicIP != "" {
		if cfg.PublicIP, err = netip.ParseAddr(f.publicIP); err != nil {
			return fmt.Errorf("relay: --public-ip: %w", err)
		}
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if f.statsEvery <= 0 {
		return fmt.Errorf("relay: --stats-every must be positive")
	}
	for _, u := range f.directoryTrackers {
		if !tracker.Supported(u) {
			return fmt.Errorf("relay: --directory-tracker %q: want an http, https or udp announce URL", u)
		}
	}
	cfg.DirectoryTrackers = f.directoryTrackers
	if !f.dht && (f.dhtListen != "" || len(f.dhtBootstrap) > 0 || f.dhtState != "") {
		return fmt.Errorf("relay: --dht-listen, --dht-bootstrap and --dht-state need --dht")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var dhtDone chan struct{}
	if f.dht {
		d, err := startRelayDHT(f, cfg.Logger.With("room", "dht"))
		if err != nil {
			return err
		}
		defer d.Close()
		cfg.DHT = d
		fmt.Fprintf(os.Stderr, "dht node listening on %s (udp)\n", d.Addr())
		dhtDone = make(chan struct{})
		go func() {
			defer close(dhtDone)
			if err := d.Start(ctx); err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("dht stopped", "err", err)
			}
		}()
	}
	s, err := relay.NewServer(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "relay listening on %s, public ports %d-%d\n", s.Addr(), lo, hi)
	for _, u := range f.directoryTrackers {
		fmt.Fprintf(os.Stderr, "listing this relay in the relay directory at %s\n", u)
	}
	var rvDone chan error
	if f.rendezvous != "" {
		rv, err := nat.NewRendezvousServer(f.rendezvous, cfg.Logger.With("room", "rendezvous"))
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "rendezvous listening on %s\n", rv.Addr())
		rvDone = make(chan error, 1)
		go func() { rvDone <- rv.Serve(ctx) }()
	}
	logStats := func() {
		st := s.Stats()
		cfg.Logger.Info("relay stats", "peers", st.Peers, "conns", st.Conns, "spliced", st.Spliced,
			"refused", st.Refused, "rejected", st.Rejected, "bytes", st.Bytes)
	}
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		t := time.NewTicker(f.statsEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				logStats()
			}
		}
	}()
	err = s.Serve(ctx)
	cancel()
	<-statsDone
	if rvDone != nil {
		<-rvDone
	}
	if dhtDone != nil {
		<-dhtDone
	}
	logStats()
	return err
}

// startRelayDHT creates the relay's DHT node (Start runs it). Loopback and
// private bootstrap nodes mark a private network, whose nodes are then
// allowed into the routing table; without --dht-bootstrap the public
// routers are used.
func startRelayDHT(f relayFlags, log *slog.Logger) (*dht.Server, error) {
	cfg := dht.Config{Listen: f.dhtListen, StateFile: f.dhtState, Logger: log}
	if cfg.Listen == "" {
		cfg.Listen = f.listen
	}
	if len(f.dhtBootstrap) > 0 {
		cfg.Bootstrap = []string{}
		for _, b := range strings.Split(strings.Join(f.dhtBootstrap, ","), ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(b); err != nil {
				return nil, fmt.Errorf("relay: --dht-bootstrap %q: want HOST:PORT", b)
			}
			cfg.Bootstrap = append(cfg.Bootstrap, b)
			if ap, err := netip.ParseAddrPort(b); err == nil && (ap.Addr().IsLoopback() || ap.Addr().IsPrivate()) {
				cfg.AllowLoopback = true
			}
		}
	}
	if ap, err := netip.ParseAddrPort(cfg.Listen); err == nil && (ap.Addr().IsLoopback() || ap.Addr().IsPrivate()) {
		cfg.AllowLoopback = true
	}
	d, err := dht.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: dht: %w", err)
	}
	return d, nil
}

// parsePortRange parses "LOW-HIGH" (or one port).
func parsePortRange(s string) (uint16, uint16, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return 0, 0, fmt.Errorf("relay: --ports %q: want LOW-HIGH with 1 <= LOW <= HIGH <= 65535", s)
	}
	return uint16(lo), uint16(hi), nil
}

// parseRate parses a byte rate like "8M", "512k", "1000000" or "0".
func parseRate(flag, s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/s"), "B")
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1<<10, t[:n-1]
		case 'm', 'M':
			mult, t = 1<<20, t[:n-1]
		case 'g', 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("relay: %s %q: want BYTES/S such as 8M, 512k or 0", flag, s)
	}
	if v == 0 {
		return -1, nil // unlimited
	}
	return v * mult, nil
}
