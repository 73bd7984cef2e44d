package catalog_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/catalog/catalogtest"
)

func TestSearchDirectoryAndMerge(t *testing.T) {
	srv, s := newHTTP(t)
	ctx := context.Background()
	a, b := catalogtest.Hash("a"), catalogtest.Hash("b")
	_ = s.Put(ctx, catalog.Entry{InfoHash: a, Name: "shared movie 2020", Size: 5})
	_ = s.Put(ctx, catalog.Entry{InfoHash: b, Name: "other shared movie", Size: 6})
	_ = s.SetSeeders(ctx, a, 3, 0)
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/announce", srv.URL + "/search"} {
		rs, total, err := catalog.SearchDirectory(ctx, http.DefaultClient, base, "shared movie", 10)
		if err != nil || total != 2 || len(rs) != 2 || rs[0].InfoHash != a.String() {
			t.Fatalf("SearchDirectory(%s) = %+v, %d, %v", base, rs, total, err)
		}
	}
	if _, _, err := catalog.SearchDirectory(ctx, http.DefaultClient, srv.URL, "...", 10); err == nil {
		t.Fatal("bad query: no error")
	}
	if _, _, err := catalog.SearchDirectory(ctx, http.DefaultClient, "ftp://x", "q", 10); err == nil {
		t.Fatal("ftp: no error")
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{not json") }))
	defer bad.Close()
	if _, _, err := catalog.SearchDirectory(ctx, http.DefaultClient, bad.URL, "q", 10); err == nil {
		t.Fatal("bad json: no error")
	}

	m := catalog.Merge(
		[]catalog.Result{{InfoHash: "aa", Name: "A", Score: 2, Seeders: 1}, {InfoHash: "bb", Name: "B", Score: 5}},
		[]catalog.Result{{InfoHash: "aa", Name: "A", Score: 6, Seeders: 0, Leechers: 4}, {InfoHash: "cc", Name: "C", Score: 2, Seeders: 9}},
	)
	if len(m) != 3 || m[0].InfoHash != "aa" || m[0].Score != 6 || m[0].Seeders != 1 || m[0].Leechers != 4 ||
		m[1].InfoHash != "bb" || m[2].InfoHash != "cc" {
		t.Fatalf("Merge = %+v", m)
	}
}
