package catalog_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/catalog/catalogtest"
)

func newHTTP(t *testing.T) (*httptest.Server, catalog.Store) {
	s, err := catalog.OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mux := http.NewServeMux()
	mux.Handle("/search", catalog.Handler(s, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, s
}

func get(t *testing.T, u string, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

func TestHandlerJSON(t *testing.T) {
	srv, s := newHTTP(t)
	ctx := context.Background()
	var es []catalog.Entry
	for _, n := range []string{"Night of the Living Dead 1968", "living planet s01", "Dead Calm", "other"} {
		es = append(es, catalog.Entry{InfoHash: catalogtest.Hash(n), Name: n, Size: 42,
			Files: []catalog.FileEntry{{Path: "a/b.mkv", Length: 42}}})
	}
	if err := catalog.PutAll(ctx, s, es); err != nil {
		t.Fatal(err)
	}
	_ = s.SetSeeders(ctx, catalogtest.Hash("living planet s01"), 9, 1)
	resp, body := get(t, srv.URL+"/search?q=living&per_page=1&page=2", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var r catalog.Response
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Total != 2 || r.Page != 2 || r.PerPage != 1 || len(r.Results) != 1 {
		t.Fatalf("response %+v", r)
	}
	// Page 1 is the one with more seeders (same match quality).
	if got := r.Results[0]; got.Name != "Night of the Living Dead 1968" || got.Size != 42 || got.NumFiles != 1 ||
		got.Files[0].Path != "a/b.mkv" || !strings.HasPrefix(got.Magnet, "magnet:?xt=urn:btih:"+got.InfoHash) {
		t.Fatalf("result %+v", got)
	}
	resp, body = get(t, srv.URL+"/search?q=...", "")
	if resp.StatusCode != 400 || !strings.Contains(body, "error") {
		t.Fatalf("empty query: %d %s", resp.StatusCode, body)
	}
	// Hostile parameters are capped, not errors.
	resp, body = get(t, srv.URL+"/search?q="+strings.Repeat("living", 1000)+"&per_page=999999999&page=-4", "")
	if resp.StatusCode != 200 {
		t.Fatalf("hostile: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Query) > catalog.MaxQueryLen || r.PerPage != catalog.MaxLimit || r.Page != 1 {
		t.Fatalf("hostile response %+v %v", r, err)
	}
	if resp, _ := get(t, srv.URL+"/search?q=x&page=99999999999999999999999", ""); resp.StatusCode != 200 {
		t.Fatalf("huge page: %d", resp.StatusCode)
	}
}

func TestHandlerHTML(t *testing.T) {
	srv, s := newHTTP(t)
	evil := `<script>alert(1)</script> evil & "name"`
	if err := s.Put(context.Background(), catalog.Entry{InfoHash: catalogtest.Hash(evil), Name: evil}); err != nil {
		t.Fatal(err)
	}
	q := `<script>x</script> evil`
	resp, body := get(t, srv.URL+"/search?q=evil+%3Cb%3E", "text/html,application/xhtml+xml")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>") {
		t.Fatalf("unescaped: %s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt; evil") {
		t.Fatalf("result missing: %s", body)
	}
	_, body = get(t, srv.URL+"/search?html=1&q="+url.QueryEscape(q), "")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "1 results") {
		t.Fatalf("html=1: %s", body)
	}
	if resp, body := get(t, srv.URL+"/search?html=1", ""); resp.StatusCode != 200 || !strings.Contains(body, "<form") {
		t.Fatalf("empty page: %d %s", resp.StatusCode, body)
	}
}
