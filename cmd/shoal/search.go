package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/catalog"
)

func init() { register(newSearchCmd) }

func newSearchCmd() *cobra.Command {
	var (
		dirs    []string
		index   string
		asJSON  bool
		limit   int
		timeout time.Duration
		fl      floodFlags
	)
	cmd := &cobra.Command{
		Use:   "search WORDS...",
		Short: "Search directories (trackers with --catalog) and the local DHT index",
		Long: `Search for torrents by name or file path. Every --directory (a shoal tracker
run with --catalog) is asked over HTTP, and the local index built by
'shoal index' is searched with --index. Results are merged by info-hash and
printed best first with name, size, seeders and a magnet link.
Matching finds any substring, ignores case and accents, and tolerates a typo.

With --flood the query also goes Gnutella-style to the shoal peers of the
swarms named by --via: each peer answers from the torrents it holds and
passes the query on (--ttl hops, once per peer); answers retrace the path.
Nothing is downloaded from the --via torrents.`,
		Example: `  shoal search --directory http://127.0.0.1:6969 "big buck bunny"
  shoal search --index ~/.shoal/index.db --json ubuntu 22.04
  shoal search --flood --via linux.torrent --ttl 3 "debian netinst"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := strings.Join(args, " ")
			if len(dirs) == 0 && index == "" && !fl.on {
				return errors.New("search: nothing to ask: give --directory URL, --index FILE and/or --flood --via FILE.torrent")
			}
			limit = min(max(limit, 1), catalog.MaxLimit)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			lists, errs := searchAll(ctx, q, dirs, index, limit)
			sources := len(dirs) + boolInt(index != "")
			if fl.on {
				sources++
				if rs, err := floodSearch(ctx, q, &fl); err != nil {
					errs = append(errs, err)
				} else {
					lists = append(lists, rs)
				}
			}
			for _, err := range errs {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
			}
			if len(errs) > 0 && len(errs) == sources {
				return fmt.Errorf("search: every source failed: %w", errors.Join(errs...))
			}
			rs := catalog.Merge(lists...)
			if len(rs) > limit {
				rs = rs[:limit]
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Query   string           `json:"query"`
					Results []catalog.Result `json:"results"`
				}{q, rs})
			}
			if len(rs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no results")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIZE\tSEEDERS\tMAGNET")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", oneLine(r.Name), catalog.HumanSize(r.Size), r.Seeders, r.Magnet)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&dirs, "directory", nil, "directory (tracker) URL to ask, e.g. http://127.0.0.1:6969 (repeatable)")
	cmd.Flags().StringVar(&index, "index", "", "local index database written by 'shoal index'")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 20, "results to print (max 200)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up on slow sources after this")
	cmd.Flags().BoolVar(&fl.on, "flood", false, "also ask shoal peers by flooding (needs --via)")
	cmd.Flags().StringArrayVar(&fl.via, "via", nil, "with --flood: .torrent whose swarm to ask (repeatable; nothing is downloaded)")
	cmd.Flags().StringArrayVar(&fl.peers, "peer", nil, "with --flood: also connect to this peer HOST:PORT (repeatable)")
	cmd.Flags().IntVar(&fl.ttl, "ttl", 3, "with --flood: hops the query may travel")
	cmd.Flags().DurationVar(&fl.wait, "wait", 3*time.Second, "with --flood: how long to wait for peers and for answers")
	cmd.Flags().StringVar(&fl.listen, "listen", "", "with --flood: TCP address to accept peers on (default: any free port)")
	cmd.Flags().BoolVar(&fl.noTracker, "no-trackers", false, "with --flood: do not announce (use --peer only)")
	return cmd
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// oneLine keeps a name from breaking the table (names come from strangers).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// searchAll asks every source concurrently.
func searchAll(ctx context.Context, q string, dirs []string, index string, limit int) ([][]catalog.Result, []error) {
	var (
		mu    sync.Mutex
		lists [][]catalog.Result
		errs  []error
		wg    sync.WaitGroup
	)
	add := func(rs []catalog.Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		lists = append(lists, rs)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, d := range dirs {
		wg.Go(func() {
			rs, _, err := catalog.SearchDirectory(ctx, hc, d, q, limit)
			add(rs, err)
		})
	}
	if index != "" {
		wg.Go(func() { add(searchIndex(ctx, index, q, limit)) })
	}
	wg.Wait()
	return lists, errs
}

func searchIndex(ctx context.Context, path, q string, limit int) ([]catalog.Result, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	s, err := catalog.OpenSQLite(ctx, path)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	hs, _, err := s.Search(ctx, catalog.Query{Text: q, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	out := make([]catalog.Result, len(hs))
	for i, h := range hs {
		out[i] = catalog.ToResult(h)
	}
	return out, nil
}
