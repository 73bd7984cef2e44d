package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// HTTP limits. A request over these is refused before any parsing.
const (
	maxQueryLen    = 8 << 10 // 64 percent-encoded hashes fit
	maxHeaderBytes = 16 << 10
)

// HTTPHandler serves /announce and /scrape (BEP 3, 23, 7, 48), /metrics
// (Prometheus text) and a status page at /; with Config.Catalog also
// /search and /upload.
type HTTPHandler struct {
	t       *Tracker  // static after construction
	started time.Time // static after construction
	mux     *http.ServeMux
}

// NewHTTPHandler returns the HTTP frontend for t.
func NewHTTPHandler(t *Tracker) *HTTPHandler {
	h := &HTTPHandler{t: t, started: t.cfg.Now(), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /announce", h.announce)
	h.mux.HandleFunc("GET /scrape", h.scrape)
	h.mux.HandleFunc("GET /metrics", h.metrics)
	h.mux.HandleFunc("GET /{$}", h.status)
	if t.cfg.Catalog != nil {
		h.mux.Handle("/search", t.cfg.Catalog)
		h.mux.Handle("/search/", t.cfg.Catalog)
		h.mux.Handle("/upload", t.cfg.Catalog)
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ServeHTTP serves the HTTP frontend on ln until ctx ends, then shuts
// down gracefully (in-flight requests get up to 5 seconds).
func ServeHTTP(ctx context.Context, ln net.Listener, t *Tracker) error {
	srv := &http.Server{
		Handler:           NewHTTPHandler(t),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http tracker: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("http tracker: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("http tracker shutdown: %w", err)
	}
	return nil
}

func remoteIP(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// writeBencode sends a bencoded body with status 200: BitTorrent clients
// read "failure reason" only from successful responses.
func writeBencode(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func writeFailure(w http.ResponseWriter, f *Failure) {
	b := append([]byte("d14:failure reason"), strconv.Itoa(len(f.Reason))...)
	b = append(b, ':')
	b = append(b, f.Reason...)
	writeBencode(w, append(b, 'e'))
}

// parseAnnounce turns a query string into an AnnounceRequest for a peer
// at ip. It never trusts the "ip" parameter: the source address is used.
func parseAnnounce(rawQuery string, ip netip.Addr) (*AnnounceRequest, bool, *Failure) {
	if len(rawQuery) > maxQueryLen {
		return nil, false, failf(ErrMalformed, "request too long")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, false, failf(ErrMalformed, "malformed query string")
	}
	req := &AnnounceRequest{NumWant: -1}
	ih := q["info_hash"]
	if len(ih) != 1 {
		return nil, false, failf(ErrMalformed, "announce needs exactly one info_hash")
	}
	if len(ih[0]) != len(req.InfoHash) {
		return nil, false, failf(ErrMalformed, "invalid info_hash: want 20 bytes, got %d", len(ih[0]))
	}
	copy(req.InfoHash[:], ih[0])
	if pid := q.Get("peer_id"); len(pid) != 20 {
		return nil, false, failf(ErrMalformed, "invalid peer_id: want 20 bytes, got %d", len(pid))
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return nil, false, failf(ErrMalformed, "invalid port %q", q.Get("port"))
	}
	req.Addr = netip.AddrPortFrom(ip, uint16(port))
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"uploaded", &req.Uploaded}, {"downloaded", &req.Downloaded}, {"left", &req.Left}} {
		s := q.Get(f.name)
		if s == "" {
			if f.name == "left" {
				return nil, false, failf(ErrMalformed, "missing left")
			}
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, false, failf(ErrMalformed, "invalid %s %q: want a non-negative integer", f.name, s)
		}
		*f.dst = n
	}
	if s := q.Get("numwant"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false, failf(ErrMalformed, "invalid numwant %q", s)
		}
		if n >= 0 {
			req.NumWant = int(min(n, 1<<20))
		}
	}
	switch ev := q.Get("event"); ev {
	case "", "empty", "paused":
	case "started":
		req.Event = EventStarted
	case "completed":
		req.Event = EventCompleted
	case "stopped":
		req.Event = EventStopped
	default:
		return nil, false, failf(ErrMalformed, "unknown event %q", ev)
	}
	compact := q.Get("compact") != "0"
	return req, compact, nil
}

func (h *HTTPHandler) announce(w http.ResponseWriter, r *http.Request) {
	ip, ok := remoteIP(r)
	if !ok {
		writeFailure(w, failf(ErrMalformed, "unknown source address"))
		return
	}
	req, compact, f := parseAnnounce(r.URL.RawQuery, ip)
	if f != nil {
		h.t.metrics.announces[ProtoHTTP].Add(1)
		h.t.metrics.errors[f.Kind].Add(1)
		writeFailure(w, f)
		return
	}
	resp, err := h.t.Announce(r.Context(), req, nil, ProtoHTTP)
	if err != nil {
		writeFailure(w, AsFailure(err))
		return
	}
	writeBencode(w, appendAnnounceResponse(nil, &resp, compact))
}

func appendInt(b []byte, key string, v int64) []byte {
	b = strconv.AppendInt(b, int64(len(key)), 10)
	b = append(b, ':')
	b = append(b, key...)
	b = append(b, 'i')
	b = strconv.AppendInt(b, v, 10)
	return append(b, 'e')
}

func appendStr(b []byte, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendAnnounceResponse encodes resp; keys in sorted order as bencode
// requires.
func appendAnnounceResponse(b []byte, resp *AnnounceResponse, compact bool) []byte {
	b = append(b, 'd')
	b = appendInt(b, "complete", int64(resp.Stats.Seeders))
	b = appendInt(b, "downloaded", int64(resp.Stats.Downloaded))
	b = appendInt(b, "incomplete", int64(resp.Stats.Leechers))
	b = appendInt(b, "interval", int64(resp.Interval/time.Second))
	b = appendInt(b, "min interval", int64(resp.MinInterval/time.Second))
	b = append(b, "5:peers"...)
	step := compactLen(resp.IPv6)
	switch {
	case !compact:
		b = append(b, 'l')
		for i := 0; i+step <= len(resp.Peers); i += step {
			ap, _ := addrFromCompact(resp.Peers[i : i+step])
			b = append(b, 'd')
			b = append(b, "2:ip"...)
			b = appendStr(b, []byte(ap.Addr().String()))
			b = appendInt(b, "port", int64(ap.Port()))
			b = append(b, 'e')
		}
		b = append(b, 'e')
	case resp.IPv6:
		b = append(b, "0:6:peers6"...)
		b = appendStr(b, resp.Peers)
	default:
		b = appendStr(b, resp.Peers)
	}
	return append(b, 'e')
}

func (h *HTTPHandler) scrape(w http.ResponseWriter, r *http.Request) {
	ip, ok := remoteIP(r)
	if !ok {
		writeFailure(w, failf(ErrMalformed, "unknown source address"))
		return
	}
	hashes, f := parseScrape(r.URL.RawQuery)
	if f != nil {
		h.t.metrics.scrapes[ProtoHTTP].Add(1)
		h.t.metrics.errors[f.Kind].Add(1)
		writeFailure(w, f)
		return
	}
	st, err := h.t.Scrape(r.Context(), ip, hashes, ProtoHTTP)
	if err != nil {
		writeFailure(w, AsFailure(err))
		return
	}
	b := []byte("d5:filesd")
	for i, hh := range hashes {
		b = appendStr(b, hh[:])
		b = append(b, 'd')
		b = appendInt(b, "complete", int64(st[i].Seeders))
		b = appendInt(b, "downloaded", int64(st[i].Downloaded))
		b = appendInt(b, "incomplete", int64(st[i].Leechers))
		b = append(b, 'e')
	}
	writeBencode(w, append(b, "ee"...))
}

// parseScrape returns the requested hashes sorted and without duplicates
// (the response is a bencode dictionary keyed by them).
func parseScrape(rawQuery string) ([]InfoHash, *Failure) {
	if len(rawQuery) > maxQueryLen {
		return nil, failf(ErrMalformed, "request too long")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, failf(ErrMalformed, "malformed query string")
	}
	raw := q["info_hash"]
	if len(raw) > MaxScrapeHashes {
		return nil, failf(ErrMalformed, "too many info-hashes in one scrape (max %d)", MaxScrapeHashes)
	}
	hashes := make([]InfoHash, 0, len(raw))
	for _, s := range raw {
		if len(s) != 20 {
			return nil, failf(ErrMalformed, "invalid info_hash: want 20 bytes, got %d", len(s))
		}
		hashes = append(hashes, InfoHash([]byte(s)))
	}
	slices.SortFunc(hashes, func(a, b InfoHash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(hashes), nil
}

func (h *HTTPHandler) metrics(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := h.t.WritePrometheus(r.Context(), &buf); err != nil {
		http.Error(w, "metrics unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(buf.Bytes())
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>shoal tracker</title>
<style>body{font:15px sans-serif;margin:2em}td{padding:2px 12px}</style></head>
<body><h1>shoal tracker</h1>
<table>
<tr><td>up since</td><td>{{.Started}}</td></tr>
<tr><td>mode</td><td>{{if .Private}}private ({{.Allowed}} info-hashes){{else}}public{{end}}</td></tr>
<tr><td>torrents</td><td>{{.Stats.Torrents}}</td></tr>
<tr><td>seeders</td><td>{{.Stats.Seeders}}</td></tr>
<tr><td>leechers</td><td>{{.Stats.Leechers}}</td></tr>
<tr><td>announces (http / udp)</td><td>{{.AnnHTTP}} / {{.AnnUDP}}</td></tr>
<tr><td>scrapes (http / udp)</td><td>{{.ScrHTTP}} / {{.ScrUDP}}</td></tr>
<tr><td>announce interval</td><td>{{.Interval}}</td></tr>
</table>
<p>Announce at <code>/announce</code>, scrape at <code>/scrape</code>, metrics at <a href="/metrics">/metrics</a>.</p>
</body></html>
`))

func (h *HTTPHandler) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := h.t.store.Stats(ctx, h.t.cfg.Now())
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	m := h.t.metrics
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	statusPage.Execute(w, map[string]any{
		"Started":  h.started.UTC().Format(time.RFC3339),
		"Private":  h.t.cfg.Allow != nil,
		"Allowed":  len(h.t.cfg.Allow),
		"Stats":    st,
		"AnnHTTP":  m.announces[ProtoHTTP].Load(),
		"AnnUDP":   m.announces[ProtoUDP].Load(),
		"ScrHTTP":  m.scrapes[ProtoHTTP].Load(),
		"ScrUDP":   m.scrapes[ProtoUDP].Load(),
		"Interval": h.t.cfg.Interval.String(),
	})
}
