package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/daemon"
	"github.com/shoal-p2p/shoal/internal/session"
	"github.com/shoal-p2p/shoal/internal/webui"
)

func init() { register(newDaemonCmd) }

// daemonConfig is the config file (JSON); every key mirrors a flag, and a
// flag given on the command line wins.
type daemonConfig struct {
	UI            string   `json:"ui"`
	Data          string   `json:"data"`
	Watch         string   `json:"watch"`
	Listen        string   `json:"listen"`
	NoDHT         bool     `json:"no_dht"`
	DHTBootstrap  string   `json:"dht_bootstrap"`
	User          string   `json:"user"`
	Password      string   `json:"password"`
	Hosts         []string `json:"hosts"`
	UploadLimit   string   `json:"upload_limit"`
	DownloadLimit string   `json:"download_limit"`
	Relays        []string `json:"relays"`
	FindRelays    bool     `json:"find_relays"`
	BehindNAT     bool     `json:"behind_nat"`
}

func newDaemonCmd() *cobra.Command {
	var f swarmFlags
	var ui, data, watch, configFile, user, password string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "daemon [flags]",
		Short: "Run many torrents in one session, with a web UI, JSON API and Transmission RPC",
		Long: `Run shoal as a long-lived service: one session for many torrents, managed from the
embedded web UI (open the --ui address in a browser), the JSON API, or any Transmission
RPC client at /transmission/rpc (e.g. transmission-remote 127.0.0.1:9091 -l).

All state (torrents, progress, settings) lives in DATA/.shoal-daemon and survives a
restart or a kill -9; verified pieces are never fetched again. The UI listens on
loopback only unless told otherwise, and then --user and a password are required
(--password or the SHOAL_PASSWORD environment variable). See docs/daemon.md.

Behind a NAT, --relay HOST:PORT and/or --find-relays make the daemon reachable through
shoal relays; --find-relays looks in the relay directory at the trackers of the public
torrents it holds (and in the DHT) until it has found some, printing what it found,
and replaces a found relay that stops working for 2 minutes.`,
		Example: `  shoal daemon --data ~/Downloads
  shoal daemon --ui 127.0.0.1:9091 --data /srv/torrents --watch /srv/torrents/watch
  SHOAL_PASSWORD=secret shoal daemon --ui 0.0.0.0:9091 --user admin --host nas.local
  shoal daemon --config /etc/shoal/daemon.json
  shoal daemon --data /srv/torrents --behind-nat --find-relays   # behind a NAT: use relays from the relay directory`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := applyDaemonConfig(cmd, configFile, &f, &ui, &data, &watch, &user, &password, &hosts); err != nil {
					return err
				}
			}
			if password == "" {
				password = os.Getenv("SHOAL_PASSWORD")
			}
			return runDaemon(cmd.Context(), &f, ui, data, watch, user, password, hosts)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&ui, "ui", "127.0.0.1:9091", "HTTP address of the web UI, JSON API and Transmission RPC")
	cmd.Flags().StringVar(&data, "data", ".", "data folder: torrents are downloaded below it, state is kept in DATA/.shoal-daemon")
	cmd.Flags().StringVar(&watch, "watch", "", "folder to watch for new .torrent files (added, then renamed to .torrent.added)")
	cmd.Flags().StringVar(&configFile, "config", "", "JSON config file (keys as the flags: ui, data, watch, listen, no_dht, user, password, hosts, ...)")
	cmd.Flags().StringVar(&user, "user", "", "require HTTP basic auth with this user (required beyond loopback)")
	cmd.Flags().StringVar(&password, "password", "", "password for --user (or SHOAL_PASSWORD)")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "also accept this name in the Host header (repeatable; IP addresses and localhost always are)")
	return cmd
}

func applyDaemonConfig(cmd *cobra.Command, path string, f *swarmFlags, ui, data, watch, user, password *string, hosts *[]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var c daemonConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := func(name, val string, dst *string) {
		if val != "" && !cmd.Flags().Changed(name) {
			*dst = val
		}
	}
	set("ui", c.UI, ui)
	set("data", c.Data, data)
	set("watch", c.Watch, watch)
	set("listen", c.Listen, &f.listen)
	set("dht-bootstrap", c.DHTBootstrap, &f.dhtBootstrap)
	set("user", c.User, user)
	set("password", c.Password, password)
	if c.NoDHT && !cmd.Flags().Changed("no-dht") {
		f.noDHT = true
	}
	if len(c.Relays) > 0 && !cmd.Flags().Changed("relay") {
		f.relays = c.Relays
	}
	if c.FindRelays && !cmd.Flags().Changed("find-relays") {
		f.findRelays = true
	}
	if c.BehindNAT && !cmd.Flags().Changed("behind-nat") {
		f.behindNAT = true
	}
	if len(c.Hosts) > 0 && !cmd.Flags().Changed("host") {
		*hosts = c.Hosts
	}
	for _, l := range []struct {
		name, val string
		dst       *byteSize
	}{{"upload-limit", c.UploadLimit, &f.upLimit}, {"download-limit", c.DownloadLimit, &f.downLimit}} {
		if l.val != "" && !cmd.Flags().Changed(l.name) {
			if err := l.dst.Set(l.val); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, l.name, err)
			}
		}
	}
	return nil
}

func runDaemon(ctx context.Context, f *swarmFlags, ui, data, watch, user, password string, hosts []string) error {
	if !webui.IsLoopback(ui) && (user == "" || password == "") {
		return fmt.Errorf("--ui %s is reachable beyond this machine: set --user and a password (--password or SHOAL_PASSWORD)", ui)
	}
	if user != "" && password == "" {
		return errors.New("--user needs a password (--password or SHOAL_PASSWORD)")
	}
	if err := f.checkRelayFlags(); err != nil {
		return err
	}
	log := f.logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The store's settings give the global limits unless flags do.
	abs, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	up, down := int64(f.upLimit), int64(f.downLimit)
	if st, err := daemon.OpenStore(filepath.Join(abs, ".shoal-daemon")); err == nil {
		if s, err := st.Settings(abs); err == nil {
			if up == 0 {
				up = s.UploadRate
			}
			if down == 0 {
				down = s.DownloadRate
			}
		}
	}
	client, err := session.NewClient(session.Config{Listen: f.listen, Logger: log, UploadRate: up, DownloadRate: down, PortForward: f.portForward, Rendezvous: f.rendezvous,
		PunchPeers: f.behindNAT || f.rendezvous != ""})
	if err != nil {
		return err
	}
	var dhtStats func() webui.DHTStats
	if !f.noDHT {
		d, err := f.startDHT(ctx, client.Addr().String(), log)
		if err != nil {
			return err
		}
		defer d.Close()
		client.SetDHT(d)
		dhtStats = func() webui.DHTStats {
			s := d.Stats()
			return webui.DHTStats{Nodes: d.NumNodes(), QueriesIn: s.QueriesIn, QueriesOut: s.QueriesOut,
				Timeouts: s.Timeouts, RateLimited: s.RateLimited, BadPackets: s.BadPackets}
		}
	}
	start := time.Now()
	m, err := daemon.New(daemon.Config{DataDir: data, Engine: client, Logger: log.With("room", "daemon")})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ui)
	if err != nil {
		return fmt.Errorf("web UI: %w", err)
	}
	srv := webui.New(webui.Config{
		Backend: m, Logger: log.With("room", "webui"), Hosts: hosts, User: user, Password: password,
		Version: version, PeerPort: int(client.Port()), DHT: dhtStats,
		Punch: func() webui.PunchStats {
			p := client.PunchStats()
			return webui.PunchStats{Attempts: p.Attempts, Successes: p.Successes, Fallbacks: p.Fallbacks, Direct: p.Direct,
				HPRequests: p.HolepunchRequests, HPRelayed: p.HolepunchRelayed, HPAttempts: p.HolepunchAttempts,
				HPSuccesses: p.HolepunchSuccesses, HPFallbacks: p.HolepunchFallbacks}
		},
	})
	mdone := make(chan struct{})
	go func() { m.Run(ctx); close(mdone) }()
	go client.Run(ctx)
	if err := f.useRelays(ctx, client); err != nil {
		return err
	}
	if watch != "" {
		if err := os.MkdirAll(watch, 0o755); err != nil {
			return fmt.Errorf("watch folder: %w", err)
		}
		go m.Watch(ctx, watch, 2*time.Second)
	}
	fmt.Fprintf(os.Stderr, "shoal daemon: %d torrents, web UI http://%s/, peers on %s, data in %s (ready in %s)\n",
		len(m.List()), ln.Addr(), client.Addr(), m.DataDir(), time.Since(start).Round(time.Millisecond))
	serr := srv.Serve(ctx, ln)
	cancel()
	<-mdone
	return serr
}
