package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/catalog/catalogtest"
)

func TestSearchMergesDirectoryAndIndex(t *testing.T) {
	ctx := context.Background()
	dirStore, err := catalog.OpenSQLite(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer dirStore.Close()
	shared, onlyDir, onlyIndex := catalogtest.Hash("shared"), catalogtest.Hash("dir"), catalogtest.Hash("index")
	_ = dirStore.Put(ctx, catalog.Entry{InfoHash: shared, Name: "Sintel 2010 1080p", Size: 1 << 30})
	_ = dirStore.Put(ctx, catalog.Entry{InfoHash: onlyDir, Name: "Sintel soundtrack", Size: 5 << 20})
	_ = dirStore.SetSeeders(ctx, shared, 12, 3)
	mux := http.NewServeMux()
	mux.Handle("/search", catalog.Handler(dirStore, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	idx := filepath.Join(t.TempDir(), "index.db")
	is, err := catalog.OpenSQLite(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	_ = is.Put(ctx, catalog.Entry{InfoHash: shared, Name: "Sintel 2010 1080p", Size: 1 << 30})
	_ = is.Put(ctx, catalog.Entry{InfoHash: onlyIndex, Name: "sintel making of", Size: 7})
	is.Close()

	out, err := runOut(t, "search", "--directory", srv.URL, "--index", idx, "--json", "SINTEL")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var r struct {
		Results []catalog.Result `json:"results"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(r.Results) != 3 {
		t.Fatalf("want 3 de-duplicated results, got %d: %s", len(r.Results), out)
	}
	seen := map[string]catalog.Result{}
	for _, x := range r.Results {
		seen[x.InfoHash] = x
	}
	if seen[shared.String()].Seeders != 12 || seen[onlyDir.String()].Name == "" || seen[onlyIndex.String()].Name == "" {
		t.Fatalf("merge lost something: %s", out)
	}

	out, err = runOut(t, "search", "--index", idx, "sintel", "2010")
	if err != nil || !strings.Contains(string(out), "Sintel 2010 1080p") || !strings.Contains(string(out), "1.0 GiB") ||
		!strings.Contains(string(out), "magnet:?xt=urn:btih:"+shared.String()) {
		t.Fatalf("table output: %v\n%s", err, out)
	}
	if err := run(t, "search", "x"); err == nil {
		t.Fatal("no source: no error")
	}
	if err := run(t, "search", "--index", filepath.Join(t.TempDir(), "absent.db"), "x"); err == nil {
		t.Fatal("absent index: no error")
	}
}
