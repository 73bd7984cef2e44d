package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxResponse caps the bytes read from a directory's answer.
const maxResponse = 8 << 20

// SearchDirectory asks the directory at base (a tracker URL such as
// http://host:6969, or its /search URL) for q and returns one page of results
// and the directory's total.
func SearchDirectory(ctx context.Context, hc *http.Client, base, q string, perPage int) ([]Result, int, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("catalog: directory %q: want an http(s) URL", base)
	}
	if !strings.HasSuffix(u.Path, "/search") {
		u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/announce"), "/") + "/search"
	}
	v := url.Values{"q": {q}, "per_page": {strconv.Itoa(perPage)}}
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: directory %s: %w", base, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: directory %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: directory %s: read: %w", base, err)
	}
	if len(body) > maxResponse {
		return nil, 0, fmt.Errorf("catalog: directory %s: answer larger than %d bytes", base, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return nil, 0, fmt.Errorf("catalog: directory %s: %s %s", base, resp.Status, e.Error)
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, 0, fmt.Errorf("catalog: directory %s: bad answer: %w", base, err)
	}
	out := r.Results[:0]
	for _, x := range r.Results { // keep only results we can name by hash
		if len(x.InfoHash) == 40 {
			if _, err := strconv.ParseUint(x.InfoHash[:8], 16, 32); err == nil {
				x.InfoHash = strings.ToLower(x.InfoHash)
				out = append(out, x)
			}
		}
	}
	return out, r.Total, nil
}

// Merge joins result lists, keeping one result per info-hash (the one with
// the best score, the most seeders seen anywhere), best first.
func Merge(lists ...[]Result) []Result {
	byHash := map[string]int{}
	var out []Result
	for _, l := range lists {
		for _, r := range l {
			i, ok := byHash[r.InfoHash]
			if !ok {
				byHash[r.InfoHash] = len(out)
				out = append(out, r)
				continue
			}
			cur := &out[i]
			seeders, leechers := max(cur.Seeders, r.Seeders), max(cur.Leechers, r.Leechers)
			if r.Score > cur.Score {
				*cur = r
			}
			cur.Seeders, cur.Leechers = seeders, leechers
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		if out[i].Seeders != out[j].Seeders {
			return out[i].Seeders > out[j].Seeders
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// HumanSize formats n bytes with binary units ("1.5 GiB").
func HumanSize(n int64) string { return humanSize(n) }
