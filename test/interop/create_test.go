package interop

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/test/clients"
)

// Torrents made by `shoal create` are accepted by transmission-show and by
// libtorrent, which report the same info-hash as `shoal info --json` and as
// this harness's own reader.
func TestCreateAcceptedByOthers(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.TransmissionShow, clients.Libtorrent)
	tests := []struct {
		kind    string
		piece   int64
		private bool
		comment string
	}{
		{"single", 256 << 10, false, ""},
		{"multi", 64 << 10, true, "made by shoal: interop test"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			dir := t.TempDir()
			var path string
			var size int64
			if tc.kind == "single" {
				path = clients.MakeSingle(t, dir, "single.bin", singleSize)
				size = singleSize
			} else {
				path = clients.MakeMulti(t, dir, "multi tree")
				for _, f := range clients.MultiLayout {
					size += f.Size
				}
			}
			tor := filepath.Join(t.TempDir(), "made by shoal.torrent")
			args := []string{"create", "-o", tor, "-t", "http://127.0.0.1:6969/announce",
				"--piece-length", strconv.FormatInt(tc.piece, 10)}
			if tc.private {
				args = append(args, "--private")
			}
			if tc.comment != "" {
				args = append(args, "--comment", tc.comment)
			}
			if _, stderr, err := clients.RunShoal(t, 2*time.Minute, append(args, path)...); err != nil {
				t.Fatalf("shoal create: %v\n%s", err, stderr)
			}

			stdout, stderr, err := clients.RunShoal(t, time.Minute, "info", "--json", tor)
			if err != nil {
				t.Fatalf("shoal info --json: %v\n%s", err, stderr)
			}
			var si map[string]any
			if err := json.Unmarshal([]byte(stdout), &si); err != nil {
				t.Fatalf("shoal info --json output is not JSON: %v\n%s", err, stdout)
			}
			shoalHash, _ := si["info_hash"].(string)
			shoalHash = strings.ToLower(shoalHash)

			ours, err := clients.ReadTorrent(tor)
			if err != nil {
				t.Fatalf("harness reader: %v", err)
			}
			lt, err := clients.LibtorrentInfo(t, tor)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := clients.TransmissionShowInfo(t, tor)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("info-hash: shoal %s, libtorrent %s, transmission %s, harness %s", shoalHash, lt.InfoHash, tr.InfoHash, ours.InfoHash)
			if shoalHash == "" || shoalHash != lt.InfoHash || shoalHash != tr.InfoHash || shoalHash != ours.InfoHash {
				t.Fatalf("info-hashes disagree: shoal %q, libtorrent %q, transmission %q, harness %q",
					shoalHash, lt.InfoHash, tr.InfoHash, ours.InfoHash)
			}
			if lt.Name != filepath.Base(path) || lt.TotalSize != size || lt.Private != tc.private || tr.Private != tc.private {
				t.Fatalf("libtorrent sees %+v, transmission %+v; want name %q size %d private %v",
					lt, tr, filepath.Base(path), size, tc.private)
			}
			wantPieces := int((size + tc.piece - 1) / tc.piece)
			if ours.PieceLength != tc.piece || lt.NumPieces != wantPieces {
				t.Fatalf("piece length %d, libtorrent pieces %d; want %d and %d", ours.PieceLength, lt.NumPieces, tc.piece, wantPieces)
			}
		})
	}
}

// A torrent made by `shoal create` describes the same bytes as one made by
// mktorrent (same pieces), so libtorrent can seed the content from it to
// shoal: the pieces shoal hashed are the pieces another client verifies.
func TestCreateSeededByLibtorrent(t *testing.T) {
	t.Parallel()
	clients.Require(t, clients.Libtorrent, clients.Opentracker)
	dir := t.TempDir()
	path := clients.MakeMulti(t, dir, "multi tree")
	tr := clients.StartOpentracker(t)
	tor := filepath.Join(t.TempDir(), "m.torrent")
	if _, stderr, err := clients.RunShoal(t, 2*time.Minute, "create", "-o", tor, "-t", tr.AnnounceURL,
		"--piece-length", "32768", path); err != nil {
		t.Fatalf("shoal create: %v\n%s", err, stderr)
	}
	info, err := clients.ReadTorrent(tor)
	if err != nil {
		t.Fatal(err)
	}
	tr.Allow(t, info.InfoHash)
	clients.StartLibtorrentSeeder(t, tor, dir) // returns once libtorrent verified every piece
	clients.WaitSeeders(t, tr.AnnounceURL, info.InfoHash, 1, announceTime)
	out := filepath.Join(t.TempDir(), "out")
	l := clients.StartLibtorrentLeecher(t, tor, out)
	if err := l.WaitDone(transferTime); err != nil {
		t.Fatal(err)
	}
	clients.RequireSameTree(t, path, filepath.Join(out, info.Name))
}
