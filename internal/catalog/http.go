package catalog

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// maxJSONFiles bounds the files listed per result in the JSON answer.
const maxJSONFiles = 20

// Result is one JSON search result.
type Result struct {
	InfoHash string      `json:"info_hash"`
	Name     string      `json:"name"`
	Size     int64       `json:"size"`
	NumFiles int         `json:"num_files"`
	Files    []FileEntry `json:"files"`
	Seeders  int         `json:"seeders"`
	Leechers int         `json:"leechers"`
	Magnet   string      `json:"magnet"`
	Score    float64     `json:"score"`
}

// Response is the JSON answer of GET /search.
type Response struct {
	Query   string   `json:"query"`
	Total   int      `json:"total"`
	Page    int      `json:"page"`
	PerPage int      `json:"per_page"`
	Results []Result `json:"results"`
}

// ToResult converts a hit for the JSON answer.
func ToResult(h Hit) Result {
	r := Result{InfoHash: h.InfoHash.String(), Name: h.Name, Size: h.Size, NumFiles: len(h.Files), Files: h.Files,
		Seeders: h.Seeders, Leechers: h.Leechers, Magnet: h.Magnet(), Score: h.Score}
	if len(r.Files) > maxJSONFiles {
		r.Files = r.Files[:maxJSONFiles]
	}
	if r.Files == nil {
		r.Files = []FileEntry{}
	}
	return r
}

// Handler serves GET /search?q=&page=&per_page= from s: JSON by default, a
// plain HTML page when the client prefers text/html or passes html=1.
// page starts at 1; per_page is capped at MaxLimit; q is cut to MaxQueryLen.
func Handler(s Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v := r.URL.Query()
		html := v.Get("html") == "1" || strings.Contains(r.Header.Get("Accept"), "text/html")
		q := v.Get("q")
		if len(q) > MaxQueryLen {
			q = q[:MaxQueryLen]
		}
		page := atoiDefault(v.Get("page"), 1)
		per := atoiDefault(v.Get("per_page"), DefaultLimit)
		page = min(max(page, 1), MaxOffset/max(1, per)+1)
		per = min(max(per, 1), MaxLimit)
		resp := Response{Query: q, Page: page, PerPage: per, Results: []Result{}}
		status := http.StatusOK
		var errMsg string
		if strings.TrimSpace(q) != "" || !html {
			hits, total, err := s.Search(r.Context(), Query{Text: q, Limit: per, Offset: (page - 1) * per})
			switch {
			case errors.Is(err, ErrInvalidQuery):
				status, errMsg = http.StatusBadRequest, "query has no letters or digits"
			case err != nil:
				log.Error("catalog search", "q", q, "err", err)
				status, errMsg = http.StatusInternalServerError, "search failed"
			default:
				resp.Total = total
				for _, h := range hits {
					resp.Results = append(resp.Results, ToResult(h))
				}
			}
		}
		if html {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_ = pageTmpl.Execute(w, pageData{Response: resp, Err: errMsg,
				Prev: page - 1, Next: nextPage(resp)})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if errMsg != "" {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": errMsg})
			return
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
}

func nextPage(r Response) int {
	if r.Page*r.PerPage < r.Total {
		return r.Page + 1
	}
	return 0
}

func atoiDefault(s string, d int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return d
	}
	return n
}

type pageData struct {
	Response
	Err        string
	Prev, Next int
}

// pageTmpl is the plain search page; html/template escapes every value.
var pageTmpl = template.Must(template.New("search").Funcs(template.FuncMap{"size": humanSize}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>shoal search</title></head>
<body>
<form method="get" action="search"><input type="hidden" name="html" value="1">
<input name="q" value="{{.Query}}" maxlength="200" autofocus> <button>Search</button></form>
{{if .Err}}<p>{{.Err}}</p>{{end}}
{{if .Query}}<p>{{.Total}} results</p>{{end}}
<table>
{{range .Results}}<tr><td><a href="{{.Magnet}}">{{.Name}}</a></td><td>{{size .Size}}</td><td>{{.Seeders}} seeders</td><td>{{.Leechers}} leechers</td></tr>
{{end}}</table>
{{if .Prev}}<a href="search?html=1&amp;q={{.Query}}&amp;page={{.Prev}}&amp;per_page={{.PerPage}}">previous</a>{{end}}
{{if .Next}}<a href="search?html=1&amp;q={{.Query}}&amp;page={{.Next}}&amp;per_page={{.PerPage}}">next</a>{{end}}
</body></html>
`))

// humanSize formats n bytes with binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}
