package interop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/test/clients"
)

// TestSearchDirectory: `shoal tracker --catalog` learns the names of the
// torrents real clients announce (libtorrent seeders; the tracker fetches
// the info dictionaries from them over BEP 9) and of one uploaded .torrent,
// then finds them by a substring from the middle of a name, with a typo, and
// in another case; `shoal search --directory` asks it too.
func TestSearchDirectory(t *testing.T) {
	clients.Require(t, clients.Mktorrent, clients.Libtorrent)
	dir := t.TempDir()
	tr := startShoalTracker(t, "--catalog", filepath.Join(dir, "catalog.db"), "--catalog-fetch-rate", "10")
	base := fmt.Sprintf("http://127.0.0.1:%d", tr.Port)

	names := []string{"Big.Buck.Bunny.2008.1080p.mkv", "Sintel_Directors_Cut", "Tears-of-Steel.4K.HDR.webm"}
	hashes := map[string]string{}
	for i, name := range names {
		src := filepath.Join(dir, fmt.Sprintf("seed%d", i))
		var path string
		if i == 1 {
			path = clients.MakeMulti(t, src, name)
		} else {
			path = clients.MakeSingle(t, src, name, 1<<20+int64(i)*777)
		}
		torrent := filepath.Join(dir, fmt.Sprintf("t%d.torrent", i))
		clients.MakeTorrent(t, path, torrent, clients.TorrentOpts{Trackers: []string{tr.HTTP()}, PieceLength: 64 << 10})
		info, err := clients.ReadTorrent(torrent)
		if err != nil {
			t.Fatal(err)
		}
		hashes[name] = info.InfoHash
		clients.StartLibtorrentSeeder(t, torrent, src)
	}

	// One torrent nobody seeds enters by upload.
	upSrc := clients.MakeSingle(t, filepath.Join(dir, "up"), "Cosmos_Laundromat_First_Cycle.mp4", 300<<10)
	upTorrent := filepath.Join(dir, "up.torrent")
	clients.MakeTorrent(t, upSrc, upTorrent, clients.TorrentOpts{Trackers: []string{tr.HTTP()}})
	upInfo, err := clients.ReadTorrent(upTorrent)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(upTorrent)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(base+"/upload", "application/x-bittorrent", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), upInfo.InfoHash) {
		t.Fatalf("upload: %s %s", resp.Status, body)
	}

	cases := []struct{ q, want string }{
		{"uck.Bun", "Big.Buck.Bunny.2008.1080p.mkv"},        // middle of a name
		{"directers cut", "Sintel_Directors_Cut"},           // a typo
		{"OF-STEEL.4k", "Tears-of-Steel.4K.HDR.webm"},       // another case
		{"laundromat", "Cosmos_Laundromat_First_Cycle.mp4"}, // uploaded
	}
	for _, c := range cases {
		want := hashes[c.want]
		if want == "" {
			want = upInfo.InfoHash
		}
		var last catalog.Response
		found := false
		deadline := time.Now().Add(90 * time.Second)
		for !found && time.Now().Before(deadline) {
			last = searchDir(t, base, c.q)
			for _, r := range last.Results {
				if r.InfoHash == want && r.Name == c.want {
					found = true
					if c.want != upInfo.Name && r.Seeders < 1 {
						found = false // wait until the announce counts reach the catalog
					}
				}
			}
			if !found {
				time.Sleep(500 * time.Millisecond)
			}
		}
		if !found {
			t.Fatalf("search %q: %s (%s) not found with a seeder; last answer %+v", c.q, c.want, want, last)
		}
		t.Logf("search %q: found %s", c.q, c.want)
	}

	// The CLI asks the same directory.
	out, stderr, err := clients.RunShoal(t, 30*time.Second, "search", "--directory", base, "--json", "bunny 1080P")
	if err != nil {
		t.Fatalf("shoal search: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, hashes["Big.Buck.Bunny.2008.1080p.mkv"]) {
		t.Fatalf("shoal search --directory: result missing:\n%s", out)
	}
}

func searchDir(t *testing.T, base, q string) catalog.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, total, err := catalog.SearchDirectory(ctx, &http.Client{}, base, q, 20)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	return catalog.Response{Query: q, Total: total, Results: rs}
}
