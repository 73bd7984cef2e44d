package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

func init() { register(newCreateCmd) }

func newCreateCmd() *cobra.Command {
	var (
		out         string
		trackers    []string
		webSeeds    []string
		pieceLength int64
		private     bool
		comment     string
		force       bool
		noDate      bool
	)
	cmd := &cobra.Command{
		Use:   "create [flags] PATH",
		Short: "Make a .torrent file from a file or folder",
		Long: `create hashes a file or folder with every core and writes a BitTorrent (v1)
.torrent file for it, then prints its info-hash and magnet link.

A folder is read in sorted order; hidden files and empty files are included;
symlinks and special files inside it are refused. Without -t the torrent is
trackerless (peers are found through the DHT and peer exchange). With several
-t, each tracker gets its own tier (BEP 12). The piece length is chosen for
about 1000-2000 pieces unless --piece-length is given (a power of two, at
least 16 KiB).`,
		Example: `  shoal create -t http://127.0.0.1:6969/announce movie.mkv
  shoal create -o photos.torrent -t udp://127.0.0.1:6969 --web-seed http://127.0.0.1:8080/ photos/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if out == "" {
				abs, err := filepath.Abs(path)
				if err != nil {
					return err
				}
				name := filepath.Base(abs)
				if name == string(filepath.Separator) {
					name = "torrent"
				}
				out = name + ".torrent"
			}
			if !force {
				if _, err := os.Stat(out); err == nil {
					return fmt.Errorf("%s already exists (use --force to overwrite)", out)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			line := newStatusLine(os.Stderr)
			start := time.Now()
			m, data, err := metainfo.Create(cmd.Context(), metainfo.CreateOptions{
				Path:        path,
				Trackers:    trackers,
				WebSeeds:    webSeeds,
				PieceLength: pieceLength,
				Private:     private,
				Comment:     comment,
				CreatedBy:   "shoal/" + version,
				NoDate:      noDate,
				Progress: func(done, total int64) {
					secs := time.Since(start).Seconds()
					line.Update(fmt.Sprintf("hashing %s %5.1f%%  %s / %s  %s", bar(done, total, 30),
						100*float64(done)/float64(max(total, 1)), humanBytes(done), humanBytes(total),
						humanRate(float64(done)/max(secs, 1e-9))))
				},
			})
			line.Done("")
			if err != nil {
				return err
			}
			if err := writeFileAtomic(out, data, force); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s: %s, %s in %d pieces of %s\n", out, m.Info.Name,
				humanBytes(m.Info.TotalLength()), m.Info.NumPieces(), humanBytes(m.Info.PieceLength))
			fmt.Fprintf(w, "info-hash: %s\n", m.InfoHash)
			fmt.Fprintf(w, "magnet:    %s\n", m.Magnet())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "write the torrent here (default: <name>.torrent in the current folder)")
	f.StringArrayVarP(&trackers, "tracker", "t", nil, "tracker announce URL (repeatable; omit for a trackerless torrent)")
	f.StringArrayVar(&webSeeds, "web-seed", nil, "web seed URL, BEP 19 (repeatable)")
	f.Int64Var(&pieceLength, "piece-length", 0, "piece length in bytes, a power of two >= 16384 (default: automatic)")
	f.BoolVar(&private, "private", false, "mark the torrent private (trackers only: no DHT, no peer exchange)")
	f.StringVar(&comment, "comment", "", "comment stored in the torrent")
	f.BoolVar(&force, "force", false, "overwrite the output file if it exists")
	f.BoolVar(&noDate, "no-date", false, "omit the creation date (byte-identical output for the same input)")
	return cmd
}

// writeFileAtomic writes data to a temp file beside path and renames it
// into place, so a failure never leaves a half-written torrent. Without
// overwrite it refuses an existing path (checked again at the last moment
// with a hard link, which fails if the name exists).
func writeFileAtomic(path string, data []byte, overwrite bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if overwrite {
			err = os.Rename(tmp.Name(), path)
		} else if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%s already exists (use --force to overwrite)", path)
		}
	}
	os.Remove(tmp.Name())
	if err == nil {
		os.Chmod(path, 0o644)
	}
	return err
}
