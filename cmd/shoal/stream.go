// Built with the session's stream glue (internal/session/stream_source.go);
// remove this tag line together with the one there.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/session"
	"github.com/shoal-p2p/shoal/internal/stream"
)

func init() { register(newStreamCmd) }

func newStreamCmd() *cobra.Command {
	var (
		f        swarmFlags
		out      string
		httpAddr string
		fileSpec string
		open     bool
		bench    bool
		bitrate  string
	)
	cmd := &cobra.Command{
		Use:   "stream [flags] FILE.torrent|MAGNET",
		Short: "Download a torrent and play a file over HTTP while it downloads",
		Long: `Start downloading a torrent and serve one of its files over HTTP at a printed URL
while it downloads. Players can seek: a read that reaches a missing piece waits for
it, and every read and seek moves the pieces just ahead of the player to the front
of the queue (the file's first and last pieces, where containers keep headers and
indexes, come first). Range requests, If-Range and the Content-Type (by extension)
work as players expect. Web seeds (BEP 19) listed in the torrent are used too.

The file is the largest audio/video file unless --file names one: its index
(from 0, in the order 'shoal info' lists), its path, or a unique part of its name.

With --bench, shoal plays the file itself as a player at --bitrate would and
reports the startup delay, the stalls, and how many bytes came from peers and
from web seeds.`,
		Example: `  shoal stream movie.torrent                     # prints http://127.0.0.1:PORT/...
  shoal stream --open --file 2 series.torrent    # play file 2 in the desktop player
  shoal stream --listen 127.0.0.1:8080 "magnet:?xt=urn:btih:..."
  shoal stream --bench --bitrate 8Mbit movie.torrent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now() // a cold start: --bench measures from here
			src, err := loadSource(args[0])
			if err != nil {
				return err
			}
			var bps float64
			if bench {
				if bps, err = stream.ParseBitrate(bitrate); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("output folder: %w", err)
			}
			return runStream(cmd.Context(), start, src, out, &f, httpAddr, fileSpec, open, bps)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "listen", "127.0.0.1:0", "HTTP address to serve the file on")
	cmd.Flags().StringVar(&fileSpec, "file", "", "file to stream: index, path or part of the name (default: the largest media file)")
	cmd.Flags().BoolVar(&open, "open", false, "open the URL in the desktop's default player")
	cmd.Flags().BoolVar(&bench, "bench", false, "play the file as a player would and report startup delay and stalls")
	cmd.Flags().StringVar(&bitrate, "bitrate", "8Mbit", "bitrate of the simulated player (--bench)")
	cmd.Flags().StringVarP(&out, "output", "o", ".", "folder to download into")
	// The swarm flags of get, with the peer port under another name: --listen is HTTP here.
	cmd.Flags().StringVar(&f.listen, "peer-listen", "", "TCP address to accept peers on (default :6881, or a free port if taken)")
	cmd.Flags().StringArrayVar(&f.peers, "peer", nil, "also connect to this peer, HOST:PORT (repeatable)")
	cmd.Flags().BoolVar(&f.noDHT, "no-dht", false, "do not use the DHT (peers come from trackers and --peer only)")
	cmd.Flags().StringVar(&f.dhtBootstrap, "dht-bootstrap", "", "DHT nodes to join through, HOST:PORT,... (default: the public routers)")
	cmd.Flags().StringVar(&f.dhtListen, "dht-listen", "", "UDP address of the DHT node (default: the peer address)")
	cmd.Flags().StringVar(&f.dhtState, "dht-state", "", "file that keeps the DHT routing table across runs")
	cmd.Flags().CountVarP(&f.verbose, "verbose", "v", "log more (-v: info, -vv: debug)")
	return cmd
}

// runStream adds the torrent, serves the chosen file over HTTP until ctx
// ends (or, with bitrate > 0, plays it once and reports).
func runStream(ctx context.Context, start time.Time, src source, root string, f *swarmFlags, httpAddr, fileSpec string, open bool, bitrate float64) error {
	log := f.logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client, err := session.NewClient(session.Config{Listen: f.listen, Logger: log})
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
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("HTTP listen: %w", err)
	}
	defer ln.Close()

	opts := session.Options{Root: root, Peers: f.peers}
	var t *session.Torrent
	if src.magnet != nil {
		fmt.Fprintf(os.Stderr, "fetching metadata for %s from peers...\n", src.magnet.InfoHash)
		t, err = client.AddMagnet(ctx, src.magnet, opts)
	} else {
		t, err = client.Add(ctx, src.mi, opts)
	}
	if err != nil {
		return err
	}
	go client.Run(ctx)
	defer func() { cancel(); <-t.Stopped() }()

	mi := t.MetaInfo()
	info := mi.Info
	fi, err := stream.ChooseFile(info, fileSpec)
	if err != nil {
		return err
	}
	file := info.Files[fi]
	name := file.Path[len(file.Path)-1]
	srcT := t.StreamSource()
	handler := stream.Handler(stream.File{
		Open: func(rctx context.Context) (io.ReadSeekCloser, error) {
			return stream.NewReader(rctx, srcT, info, fi, stream.Config{})
		},
		Name:    name,
		ModTime: start,
		ETag:    fmt.Sprintf(`"%s-%d"`, mi.InfoHash, fi),
	})
	mux := http.NewServeMux()
	mux.Handle("/", handler) // any path serves the file; the printed one names it
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	u := "http://" + ln.Addr().String() + "/" + url.PathEscape(name)
	fmt.Fprintf(os.Stderr, "%s  %s  file %d: %s (%s)\n", info.Name, mi.InfoHash, fi, strings.Join(file.Path, "/"), humanBytes(file.Length))
	fmt.Println(u)

	if open {
		if err := openURL(u); err != nil {
			fmt.Fprintf(os.Stderr, "could not open a player: %v\n", err)
		}
	}
	if bitrate > 0 {
		return benchStream(ctx, t, u, file.Length, bitrate, start)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-t.Stopped():
		if st := t.Stats(); st.Err != nil {
			return fmt.Errorf("torrent stopped: %w", st.Err)
		}
		return errors.New("torrent stopped")
	}
}

// benchStream plays the URL as a player at bitrate and prints the result.
// First byte and startup count from start (the command's start: reading
// the .torrent, opening the client, connecting, fetching the first pieces).
func benchStream(ctx context.Context, t *session.Torrent, u string, size int64, bitrate float64, start time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: HTTP status %s", resp.Status)
	}
	res, err := stream.Play(ctx, resp.Body, size, stream.PlayConfig{Bitrate: bitrate, Start: start})
	time.Sleep(1100 * time.Millisecond) // let the once-a-second counters catch up
	st := t.Stats()
	ws := t.WebseedBytes()
	fmt.Printf("bitrate        %.2f Mbit/s\n", bitrate/1e6)
	fmt.Printf("first byte     %v\n", res.FirstByte.Round(time.Millisecond))
	fmt.Printf("startup delay  %v\n", res.Startup.Round(time.Millisecond))
	fmt.Printf("stalls         %d (%v in all)\n", res.Stalls, res.StallTime.Round(time.Millisecond))
	fmt.Printf("played         %s in %v\n", humanBytes(res.Bytes), res.PlayTime.Round(time.Millisecond))
	fmt.Printf("from peers     %s (%d bytes)\n", humanBytes(max(st.Downloaded-ws, 0)), max(st.Downloaded-ws, 0))
	fmt.Printf("from web seeds %s (%d bytes)\n", humanBytes(ws), ws)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// openURL hands u to the desktop's URL opener without waiting for it.
func openURL(u string) error {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.Command("open", u)
	case "windows":
		c = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		c = exec.Command("xdg-open", u)
	}
	if err := c.Start(); err != nil {
		return err
	}
	go c.Wait() // reap it
	return nil
}
