package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

func init() { register(newInfoCmd) }

// infoJSON is the stable --json output of shoal info. Fields a magnet link
// does not carry are omitted for magnets.
type infoJSON struct {
	Name         string     `json:"name"`
	InfoHash     string     `json:"info_hash"`
	Size         int64      `json:"size,omitempty"`
	PieceLength  int64      `json:"piece_length,omitempty"`
	Pieces       int        `json:"pieces,omitempty"`
	Private      bool       `json:"private"`
	Files        []fileJSON `json:"files,omitempty"`
	Trackers     [][]string `json:"trackers"`
	WebSeeds     []string   `json:"web_seeds"`
	Peers        []string   `json:"peers,omitempty"`
	Comment      string     `json:"comment,omitempty"`
	CreatedBy    string     `json:"created_by,omitempty"`
	CreationDate int64      `json:"creation_date,omitempty"`
	Magnet       string     `json:"magnet"`
}

type fileJSON struct {
	Path    string `json:"path"`
	Length  int64  `json:"length"`
	Padding bool   `json:"padding,omitempty"`
}

func newInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info [--json] FILE.torrent|MAGNET",
		Short: "Show what a .torrent file or magnet link describes",
		Long: `info prints a torrent's name, info-hash, size, piece geometry, files,
trackers (by tier) and web seeds. For a magnet link it prints what the link
carries (the file list needs the metadata from peers: use shoal get).
--json prints one object with stable keys: name, info_hash, size,
piece_length, pieces, private, files [{path, length}], trackers [[...]],
web_seeds, magnet (plus comment, created_by, creation_date when present).`,
		Example: `  shoal info movie.torrent
  shoal info --json movie.torrent | jq .files
  shoal info 'magnet:?xt=urn:btih:...'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			var j infoJSON
			if strings.HasPrefix(strings.ToLower(arg), "magnet:") {
				m, err := metainfo.ParseMagnet(arg)
				if err != nil {
					return err
				}
				j = infoJSON{Name: m.Name, InfoHash: m.InfoHash.String(), Trackers: [][]string{},
					WebSeeds: m.WebSeeds, Peers: m.Peers, Magnet: m.String()}
				for _, t := range m.Trackers {
					j.Trackers = append(j.Trackers, []string{t})
				}
			} else {
				m, err := metainfo.Load(arg)
				if err != nil {
					return err
				}
				j = torrentJSON(m)
			}
			if j.WebSeeds == nil {
				j.WebSeeds = []string{}
			}
			if j.Trackers == nil {
				j.Trackers = [][]string{}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(j)
			}
			printInfo(cmd.OutOrStdout(), &j)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON with stable keys")
	return cmd
}

func torrentJSON(m *metainfo.MetaInfo) infoJSON {
	in := m.Info
	j := infoJSON{
		Name: in.Name, InfoHash: m.InfoHash.String(), Size: in.TotalLength(),
		PieceLength: in.PieceLength, Pieces: in.NumPieces(), Private: in.Private,
		Trackers: m.Trackers(), WebSeeds: m.URLList, Comment: m.Comment,
		CreatedBy: m.CreatedBy, CreationDate: m.CreationDate, Magnet: m.Magnet(),
		Files: make([]fileJSON, 0, len(in.Files)),
	}
	for _, f := range in.Files {
		p := strings.Join(f.Path, "/")
		if in.MultiFile {
			p = in.Name + "/" + p
		}
		j.Files = append(j.Files, fileJSON{Path: p, Length: f.Length, Padding: f.Padding})
	}
	return j
}

// printable replaces control characters so that names from a torrent cannot
// drive the terminal (escape sequences) or fake extra output lines.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func printInfo(w io.Writer, j *infoJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", printable(j.Name))
	row("Info-hash", j.InfoHash)
	if j.Pieces > 0 {
		row("Size", fmt.Sprintf("%s (%d bytes)", humanBytes(j.Size), j.Size))
		row("Pieces", fmt.Sprintf("%d of %s (%d bytes)", j.Pieces, humanBytes(j.PieceLength), j.PieceLength))
		row("Private", map[bool]string{true: "yes", false: "no"}[j.Private])
	}
	if j.Comment != "" {
		row("Comment", printable(j.Comment))
	}
	if j.CreatedBy != "" {
		row("Created by", printable(j.CreatedBy))
	}
	if j.CreationDate != 0 {
		row("Created", time.Unix(j.CreationDate, 0).UTC().Format(time.RFC3339))
	}
	tw.Flush()
	if len(j.Trackers) == 0 {
		fmt.Fprintln(w, "\nTrackers: none")
	} else {
		fmt.Fprintln(w, "\nTrackers:")
		for i, tier := range j.Trackers {
			for _, t := range tier {
				fmt.Fprintf(w, "  tier %d  %s\n", i+1, printable(t))
			}
		}
	}
	if len(j.WebSeeds) > 0 {
		fmt.Fprintln(w, "\nWeb seeds:")
		for _, u := range j.WebSeeds {
			fmt.Fprintf(w, "  %s\n", printable(u))
		}
	}
	if len(j.Peers) > 0 {
		fmt.Fprintln(w, "\nPeers:")
		for _, p := range j.Peers {
			fmt.Fprintf(w, "  %s\n", printable(p))
		}
	}
	if j.Pieces > 0 {
		fmt.Fprintf(w, "\nFiles (%d):\n", len(j.Files))
		fw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, f := range j.Files {
			pad := ""
			if f.Padding {
				pad = "  (padding)"
			}
			fmt.Fprintf(fw, "  %s\t  %s%s\n", humanBytes(f.Length), printable(f.Path), pad)
		}
		fw.Flush()
	} else {
		fmt.Fprintln(w, "\nFiles: unknown until the metadata is fetched from peers")
	}
	fmt.Fprintf(w, "\nMagnet: %s\n", j.Magnet)
}
