package catalog_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// fakeDHT: node 1 knows node 2; each node stores some info-hashes.
type fakeDHT struct {
	mu      sync.Mutex
	samples map[netip.AddrPort][][20]byte
	links   map[netip.AddrPort][]netip.AddrPort
	asked   int
}

func (f *fakeDHT) Nodes() []netip.AddrPort {
	return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
}
func (f *fakeDHT) Sample(_ context.Context, a netip.AddrPort) ([][20]byte, []netip.AddrPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.samples[a], f.links[a], nil
}

// fakeFetcher serves info dictionaries it has; others fail.
type fakeFetcher struct {
	mu    sync.Mutex
	infos map[metainfo.Hash][]byte
	calls map[metainfo.Hash]int
}

func (f *fakeFetcher) FetchMetadata(_ context.Context, m *metainfo.Magnet) ([]byte, []netip.AddrPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m.InfoHash]++
	if raw, ok := f.infos[m.InfoHash]; ok {
		return raw, nil, nil
	}
	return nil, nil, errors.New("no peers")
}

func makeInfo(t *testing.T, name string) (metainfo.Hash, []byte) {
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "episode.mkv"), []byte(name), 0o644)
	mi, _, err := metainfo.Create(context.Background(), metainfo.CreateOptions{Path: dir, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	return mi.InfoHash, mi.Info.Raw
}

func TestIndexerResumes(t *testing.T) {
	ctx := context.Background()
	n1, n2 := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	h1, raw1 := makeInfo(t, "Alpha Show S01")
	h2, raw2 := makeInfo(t, "Beta Documentary")
	h3, raw3 := makeInfo(t, "Gamma Concert")
	missing := metainfo.Hash{9}
	d := &fakeDHT{
		samples: map[netip.AddrPort][][20]byte{n1: {h1, missing}, n2: {h2, h3, h1}},
		links:   map[netip.AddrPort][]netip.AddrPort{n1: {n2}},
	}
	f := &fakeFetcher{infos: map[metainfo.Hash][]byte{h1: raw1, h2: raw2, h3: raw3}, calls: map[metainfo.Hash]int{}}
	path := filepath.Join(t.TempDir(), "index.db")
	run := func(max int) catalog.IndexProgress {
		s, err := catalog.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var last catalog.IndexProgress
		ix, err := catalog.NewIndexer(catalog.IndexerConfig{Store: s, Sampler: d, Fetcher: f, Rate: 1000, Max: max,
			Parallel: 1, MaxTries: 2, StopWhenIdle: true, Progress: func(p catalog.IndexProgress) { last = p }})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := ix.Run(rctx); err != nil {
			t.Fatal(err)
		}
		if rctx.Err() != nil {
			t.Fatal("indexer did not stop by itself")
		}
		return last
	}
	p := run(1)
	if p.Indexed != 1 {
		t.Fatalf("first run indexed %d, want 1 (Max)", p.Indexed)
	}
	p = run(0)
	if p.Indexed != 2 {
		t.Fatalf("second run indexed %d, want the remaining 2; progress %+v", p.Indexed, p)
	}
	s, err := catalog.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{"alpha show", "documentary", "concert", "episode mkv"} {
		if _, total, err := s.Search(ctx, catalog.Query{Text: q}); err != nil || total == 0 {
			t.Errorf("Search(%q) total %d, %v", q, total, err)
		}
	}
	pending, done, failed, err := s.SampleCounts(ctx)
	if err != nil || pending != 0 || done != 3 || failed != 1 {
		t.Fatalf("counts pending %d done %d failed %d %v", pending, done, failed, err)
	}
	for h, n := range f.calls {
		if h != missing && n != 1 {
			t.Errorf("%s fetched %d times, want once", h, n)
		}
	}
	if f.calls[missing] != 2 {
		t.Errorf("missing hash tried %d times, want MaxTries=2", f.calls[missing])
	}
}
