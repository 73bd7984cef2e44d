// Command catalog benchmarks the SQLite search catalog: it generates N
// realistic torrent names deterministically, loads them, runs substring
// queries cut from the middle of random names, and prints the latency (p50,
// p99) and the recall against a brute-force scan of the normalised names,
// which must be 100% for exact substrings.
//
//	go run ./bench/catalog -n 1000000 -queries 200
package main

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

var words = strings.Fields(`the a of and last night city river black white red blue green golden silent dark
light lost found secret hidden wild broken dead living love war peace star moon sun ocean mountain forest desert
island king queen prince empire kingdom dragon wolf tiger eagle ghost shadow fire ice storm thunder rain snow
winter summer spring autumn journey return rise fall legend story chronicles tales song dance dream memory
future past time space planet earth galaxy machine robot code signal zero one two three first final eternal
sacred crimson silver iron stone glass paper road house garden bridge tower castle harbor station frontier
amélie café señor über straße naïve déjà crème résumé piñata`)

var tails = [][]string{
	{"1080p", "720p", "2160p", "480p", "4k"},
	{"BluRay", "WEB-DL", "WEBRip", "HDTV", "DVDRip", "Remux"},
	{"x264", "x265", "HEVC", "AV1", "XviD"},
	{"AAC", "DTS", "FLAC", "AC3", "Opus"},
	{"mkv", "mp4", "avi", "iso", "zip", "flac", "epub", "pdf"},
}

// genName returns the i-th name; the same seed gives the same names.
func genName(rng *rand.Rand, i int) string {
	n := 1 + rng.IntN(4)
	parts := make([]string, 0, n+6)
	for range n {
		w := words[rng.IntN(len(words))]
		if rng.IntN(2) == 0 {
			r := []rune(w)
			w = strings.ToUpper(string(r[:1])) + string(r[1:])
		}
		parts = append(parts, w)
	}
	if rng.IntN(3) > 0 {
		parts = append(parts, fmt.Sprint(1950+rng.IntN(76)))
	}
	if rng.IntN(4) == 0 {
		parts = append(parts, fmt.Sprintf("S%02dE%02d", 1+rng.IntN(12), 1+rng.IntN(24)))
	}
	for _, t := range tails[:4] {
		if rng.IntN(2) == 0 {
			parts = append(parts, t[rng.IntN(len(t))])
		}
	}
	parts = append(parts, fmt.Sprintf("%x", i)) // keep names distinct
	sep := []string{".", " ", "_", "-"}[rng.IntN(4)]
	return strings.Join(parts, sep) + "." + tails[4][rng.IntN(len(tails[4]))]
}

func hash(i int) metainfo.Hash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return metainfo.Hash(sha1.Sum(b[:]))
}

func main() {
	n := flag.Int("n", 1_000_000, "names to generate")
	nq := flag.Int("queries", 200, "substring queries")
	dbPath := flag.String("db", "", "SQLite file (default: a temporary file, removed afterwards)")
	batch := flag.Int("batch", 50_000, "entries per insert transaction")
	flag.Parse()
	if err := run(*n, *nq, *batch, *dbPath); err != nil {
		fmt.Fprintln(os.Stderr, "bench/catalog:", err)
		os.Exit(1)
	}
}

func run(n, nq, batch int, dbPath string) error {
	ctx := context.Background()
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "shoal-catalog-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbPath = filepath.Join(dir, "catalog.db")
	}
	s, err := catalog.OpenSQLite(ctx, dbPath)
	if err != nil {
		return err
	}
	defer s.Close()

	rng := rand.New(rand.NewPCG(42, 1))
	norm := make([]string, n)
	start := time.Now()
	es := make([]catalog.Entry, 0, batch)
	for i := range n {
		name := genName(rng, i)
		norm[i] = catalog.Normalize(name)
		es = append(es, catalog.Entry{InfoHash: hash(i), Name: name, Size: int64(1 + rng.IntN(1<<30)),
			Files: []catalog.FileEntry{{Path: name, Length: 1}}, Added: time.Unix(1700000000, 0)})
		if len(es) == batch || i == n-1 {
			if err := s.PutBatch(ctx, es); err != nil {
				return err
			}
			es = es[:0]
		}
	}
	load := time.Since(start)
	st, _ := os.Stat(dbPath)
	fmt.Printf("loaded %d names in %v (%.0f names/s), db %d MiB\n", n, load.Round(time.Millisecond),
		float64(n)/load.Seconds(), st.Size()>>20)

	var lat []time.Duration
	var found, expected, checked, skipped int
	for range nq {
		src := norm[rng.IntN(n)]
		l := 4 + rng.IntN(9)
		if len(src) <= l {
			l = len(src) - 1
		}
		i := rng.IntN(len(src) - l + 1)
		q := strings.TrimSpace(src[i : i+l])
		if len([]rune(q)) == 0 || !strings.Contains(src, q) { // cut inside a rune
			continue
		}
		t0 := time.Now()
		_, total, err := s.Search(ctx, catalog.Query{Text: q, Limit: 50})
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("search %q: %w", q, err)
		}
		// Recall: every name containing q must be among the hits.
		var want []int
		for k, nm := range norm {
			if strings.Contains(nm, q) {
				want = append(want, k)
			}
		}
		if total < len(want) {
			return fmt.Errorf("search %q: total %d below brute force %d", q, total, len(want))
		}
		if total > catalog.MaxOffset {
			skipped++
			continue
		}
		got := map[metainfo.Hash]bool{}
		for off := 0; off < total; off += catalog.MaxLimit {
			hs, _, err := s.Search(ctx, catalog.Query{Text: q, Limit: catalog.MaxLimit, Offset: off})
			if err != nil {
				return err
			}
			for _, h := range hs {
				got[h.InfoHash] = true
			}
		}
		checked++
		expected += len(want)
		for _, k := range want {
			if got[hash(k)] {
				found++
			}
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("%d substring queries (limit 50): p50 %v  p99 %v  max %v\n", len(lat),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	recall := 100.0
	if expected > 0 {
		recall = 100 * float64(found) / float64(expected)
	}
	fmt.Printf("recall vs brute-force scan: %d/%d = %.2f%% over %d queries (%d with > %d hits checked by total only)\n",
		found, expected, recall, checked, skipped, catalog.MaxOffset)
	if found != expected {
		return fmt.Errorf("recall %.2f%%, want 100%%", recall)
	}
	return nil
}
