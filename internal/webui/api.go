package webui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/daemon"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/stream"
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/session", s.apiSession)
	m.HandleFunc("GET /api/torrents", s.apiList)
	m.HandleFunc("POST /api/torrents", s.mutating(s.apiAdd))
	m.HandleFunc("GET /api/torrents/{hash}", s.apiGet)
	m.HandleFunc("GET /api/torrents/{hash}/swarm", s.apiSwarm)
	m.HandleFunc("GET /api/torrents/{hash}/pieces", s.apiPieces)
	m.HandleFunc("POST /api/torrents/{hash}/{action}", s.mutating(s.apiAction))
	m.HandleFunc("PATCH /api/torrents/{hash}", s.mutating(s.apiSet))
	m.HandleFunc("DELETE /api/torrents/{hash}", s.mutating(s.apiRemove))
	m.HandleFunc("GET /api/settings", s.apiSettings)
	m.HandleFunc("PATCH /api/settings", s.mutating(s.apiSetSettings))
	m.HandleFunc("GET /api/events", s.apiEvents)
	m.HandleFunc("GET /stream/{hash}/{file}", s.streamFile)
	m.HandleFunc("POST /transmission/rpc", s.rpc)
	m.HandleFunc("GET /transmission/rpc", s.rpc)
	m.HandleFunc("POST /transmission/rpc/", s.rpc) // transmission-remote adds the slash
	m.HandleFunc("GET /transmission/rpc/", s.rpc)
	m.HandleFunc("GET /metrics", s.metrics)
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	m.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	}))
}

// mutating wraps a state-changing handler: it needs the session token.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenOK(r) {
			writeErr(w, http.StatusForbidden, errors.New("missing or wrong X-Shoal-Token (GET /api/session gives it)"))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// statusOf maps backend errors to HTTP codes.
func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, daemon.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, daemon.ErrExists):
		return http.StatusConflict
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, daemon.ErrOutside), errors.Is(err, metainfo.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusBadRequest
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"token": s.token, "version": s.cfg.Version, "data_dir": s.cfg.Backend.DataDir(),
		"peer_port": s.cfg.PeerPort,
	})
}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Backend.List())
}

func (s *Server) apiGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Backend.Get(r.PathValue("hash"))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) apiSwarm(w http.ResponseWriter, r *http.Request) {
	peers, rounds, err := s.cfg.Backend.Swarm(r.PathValue("hash"))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"peers": peers, "rounds": rounds})
}

// apiPieces returns the piece map as a string of '0' and '1'.
func (s *Server) apiPieces(w http.ResponseWriter, r *http.Request) {
	pm, err := s.cfg.Backend.PieceMap(r.PathValue("hash"))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	var b strings.Builder
	for _, ok := range pm {
		if ok {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pieces": b.String()})
}

// addRequest is the JSON body of POST /api/torrents.
type addRequest struct {
	URL     string   `json:"url,omitempty"`     // magnet or http(s) URL
	Torrent string   `json:"torrent,omitempty"` // base64 .torrent bytes
	Dir     string   `json:"dir,omitempty"`     // inside the data folder
	Paused  bool     `json:"paused,omitempty"`
	Peers   []string `json:"peers,omitempty"`
}

// apiAdd takes a JSON addRequest or a multipart form with a "torrent" file
// (and optional "url", "dir", "paused" fields).
func (s *Server) apiAdd(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	var data []byte
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			writeErr(w, statusOf(err), fmt.Errorf("form: %w", err))
			return
		}
		defer r.MultipartForm.RemoveAll()
		req.URL, req.Dir = r.FormValue("url"), r.FormValue("dir")
		req.Paused = r.FormValue("paused") == "true"
		if f, _, err := r.FormFile("torrent"); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, metainfo.MaxTorrentSize+1))
			f.Close()
			if err != nil {
				writeErr(w, statusOf(err), err)
				return
			}
		}
	default:
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(w, statusOf(err), fmt.Errorf("body: %w", err))
			return
		}
		if req.Torrent != "" {
			var err error
			if data, err = base64.StdEncoding.DecodeString(req.Torrent); err != nil {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("torrent: %w", err))
				return
			}
		}
	}
	o := daemon.AddOptions{Dir: req.Dir, Paused: req.Paused, Peers: req.Peers}
	var h string
	var err error
	switch {
	case len(data) > 0:
		h, err = s.cfg.Backend.AddTorrent(data, o)
	case req.URL != "":
		h, err = s.cfg.Backend.AddURL(r.Context(), strings.TrimSpace(req.URL), o)
	default:
		err = errors.New("give a torrent file, a magnet link or a URL")
	}
	if err != nil {
		writeJSON(w, statusOf(err), map[string]string{"error": err.Error(), "hash": h})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"hash": h})
}

func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	h := r.PathValue("hash")
	var err error
	switch r.PathValue("action") {
	case "start":
		err = s.cfg.Backend.Start(h)
	case "start-now":
		err = s.cfg.Backend.StartNow(h)
	case "stop":
		err = s.cfg.Backend.Stop(h)
	case "verify":
		err = s.cfg.Backend.Verify(h)
	default:
		writeErr(w, http.StatusNotFound, errors.New("unknown action (start, start-now, stop, verify)"))
		return
	}
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"ok": h})
}

func (s *Server) apiSet(w http.ResponseWriter, r *http.Request) {
	var c daemon.Changes
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		writeErr(w, statusOf(err), fmt.Errorf("body: %w", err))
		return
	}
	if err := s.cfg.Backend.Set(r.PathValue("hash"), c); err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"ok": r.PathValue("hash")})
}

func (s *Server) apiRemove(w http.ResponseWriter, r *http.Request) {
	withData, _ := strconv.ParseBool(r.URL.Query().Get("data"))
	if err := s.cfg.Backend.Remove(r.PathValue("hash"), withData); err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"ok": r.PathValue("hash")})
}

func (s *Server) apiSettings(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Backend.Settings())
}

func (s *Server) apiSetSettings(w http.ResponseWriter, r *http.Request) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		writeErr(w, statusOf(err), fmt.Errorf("body: %w", err))
		return
	}
	var decodeErr error
	err := s.cfg.Backend.UpdateSettings(func(st *daemon.Settings) {
		// Re-marshal the current settings, overlay the given keys.
		cur, _ := json.Marshal(st)
		var m map[string]json.RawMessage
		json.Unmarshal(cur, &m)
		for k, v := range raw {
			if _, ok := m[k]; !ok {
				decodeErr = fmt.Errorf("unknown setting %q", k)
				return
			}
			m[k] = v
		}
		b, _ := json.Marshal(m)
		var next daemon.Settings
		if decodeErr = json.Unmarshal(b, &next); decodeErr == nil {
			*st = next
		}
	})
	if decodeErr != nil {
		err = decodeErr
	}
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Backend.Settings())
}

// apiEvents streams server-sent events: a "torrents" event with the full
// list at once, on every change, and at least every second while anything
// runs; a comment line every 15 s keeps proxies from closing it.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	ch, unsub := s.cfg.Backend.Subscribe()
	defer unsub()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	send := func() bool {
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // a client that stops reading is dropped
		b, _ := json.Marshal(map[string]any{"torrents": s.cfg.Backend.List(), "totals": s.cfg.Backend.Totals()})
		if _, err := fmt.Fprintf(w, "event: torrents\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ch:
		case <-tick.C:
		}
		if !send() {
			return
		}
	}
}

// streamFile serves one file of a running torrent (Range requests move the
// download's priority to where the player reads).
func (s *Server) streamFile(w http.ResponseWriter, r *http.Request) {
	h := r.PathValue("hash")
	idx, err := strconv.Atoi(r.PathValue("file"))
	if err != nil || idx < 0 {
		writeErr(w, http.StatusBadRequest, errors.New("bad file index"))
		return
	}
	t, err := s.cfg.Backend.Running(h)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	if t == nil {
		writeErr(w, http.StatusConflict, errors.New("torrent is not running; start it to stream"))
		return
	}
	info := t.MetaInfo().Info
	if idx >= len(info.Files) || info.Files[idx].Padding {
		writeErr(w, http.StatusNotFound, errors.New("no such file"))
		return
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	f := info.Files[idx]
	stream.Handler(stream.File{
		Name: f.Path[len(f.Path)-1],
		ETag: fmt.Sprintf(`"%s-%d"`, h, idx),
		Open: func(ctx context.Context) (io.ReadSeekCloser, error) {
			return stream.NewReader(ctx, t.StreamSource(), info, idx, stream.Config{})
		},
	}).ServeHTTP(w, r)
}
