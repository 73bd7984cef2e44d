package webui

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/shoal-p2p/shoal/internal/daemon"
)

// The Transmission RPC (spec: transmission/docs/rpc-spec.md, version 15 as
// in Transmission 3.00). Protocol flow:
//
//	client → POST /transmission/rpc  (no X-Transmission-Session-Id)
//	server → 409, X-Transmission-Session-Id: <token>
//	client → POST again with the header; body {"method":..., "arguments":{...}, "tag":N}
//	server → 200 {"result":"success"|<error text>, "arguments":{...}, "tag":N}
//
// Torrents are named by "ids": a number (our stable ID), a hash string, a
// list of those, "recently-active", or absent (= all).

type rpcRequest struct {
	Method    string          `json:"method"`
	Arguments json.RawMessage `json:"arguments"`
	Tag       *json.Number    `json:"tag,omitempty"`
}

type rpcResponse struct {
	Result    string       `json:"result"`
	Arguments any          `json:"arguments"`
	Tag       *json.Number `json:"tag,omitempty"`
}

func (s *Server) rpc(w http.ResponseWriter, r *http.Request) {
	if !s.tokenOK(r) {
		w.Header().Set("X-Transmission-Session-Id", s.token)
		http.Error(w, "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p><p><code>X-Transmission-Session-Id: "+s.token+"</code></p>", http.StatusConflict)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST a JSON request", http.StatusMethodNotAllowed)
		return
	}
	var req rpcRequest
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		writeJSON(w, http.StatusBadRequest, rpcResponse{Result: "bad request: " + err.Error(), Arguments: map[string]any{}})
		return
	}
	var args map[string]any
	if len(req.Arguments) > 0 {
		d := json.NewDecoder(strings.NewReader(string(req.Arguments)))
		d.UseNumber()
		if err := d.Decode(&args); err != nil {
			writeJSON(w, http.StatusOK, rpcResponse{Result: "bad arguments: " + err.Error(), Arguments: map[string]any{}, Tag: req.Tag})
			return
		}
	}
	if args == nil {
		args = map[string]any{}
	}
	out, err := s.rpcCall(r, req.Method, args)
	resp := rpcResponse{Result: "success", Arguments: out, Tag: req.Tag}
	if err != nil {
		resp.Result = err.Error()
	}
	if resp.Arguments == nil {
		resp.Arguments = map[string]any{}
	}
	w.Header().Set("X-Transmission-Session-Id", s.token)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) rpcCall(r *http.Request, method string, args map[string]any) (any, error) {
	b := s.cfg.Backend
	switch method {
	case "session-get":
		return s.sessionGet(), nil
	case "session-set":
		return nil, s.sessionSet(args)
	case "session-stats":
		t := b.Totals()
		stats := map[string]any{"uploadedBytes": t.Uploaded, "downloadedBytes": t.Downloaded, "filesAdded": t.Torrents, "sessionCount": 1, "secondsActive": 0}
		return map[string]any{
			"activeTorrentCount": t.Active, "pausedTorrentCount": t.Paused, "torrentCount": t.Torrents,
			"downloadSpeed": int64(t.DownRate), "uploadSpeed": int64(t.UpRate),
			"cumulative-stats": stats, "current-stats": stats,
		}, nil
	case "torrent-get":
		return s.torrentGet(args)
	case "torrent-add":
		return s.torrentAdd(r, args)
	case "torrent-start", "torrent-start-now", "torrent-stop", "torrent-verify", "torrent-remove", "torrent-reannounce":
		hashes, err := s.resolveIDs(args["ids"])
		if err != nil {
			return nil, err
		}
		del := asBool(args["delete-local-data"])
		var errs []error
		for _, h := range hashes {
			switch method {
			case "torrent-start":
				errs = append(errs, b.Start(h))
			case "torrent-start-now":
				errs = append(errs, b.StartNow(h))
			case "torrent-stop":
				errs = append(errs, b.Stop(h))
			case "torrent-verify":
				errs = append(errs, b.Verify(h))
			case "torrent-remove":
				errs = append(errs, b.Remove(h, del))
			}
		}
		return nil, errors.Join(errs...)
	case "torrent-set":
		return nil, s.torrentSet(args)
	case "queue-move-top", "queue-move-up", "queue-move-down", "queue-move-bottom", "blocklist-update", "port-test", "free-space", "torrent-set-location", "torrent-rename-path":
		if method == "port-test" {
			return map[string]any{"port-is-open": true}, nil
		}
		return nil, fmt.Errorf("method %s is not supported by shoal", method)
	}
	return nil, fmt.Errorf("method name not recognized")
}

// resolveIDs turns Transmission "ids" into info-hashes.
func (s *Server) resolveIDs(v any) ([]string, error) {
	b := s.cfg.Backend
	all := func() []string {
		var hs []string
		for _, t := range b.List() {
			hs = append(hs, t.Hash)
		}
		return hs
	}
	one := func(x any) (string, error) {
		switch x := x.(type) {
		case json.Number:
			id, err := x.Int64()
			if err != nil {
				return "", fmt.Errorf("bad id %s", x)
			}
			h, ok := b.HashByID(int(id))
			if !ok {
				return "", fmt.Errorf("%w: id %d", daemon.ErrNotFound, id)
			}
			return h, nil
		case string:
			h := strings.ToLower(x)
			if len(h) != 40 {
				return "", fmt.Errorf("bad hash %q", x)
			}
			return h, nil
		}
		return "", fmt.Errorf("bad id %v", x)
	}
	switch x := v.(type) {
	case nil:
		return all(), nil
	case string:
		if x == "recently-active" {
			var hs []string
			for _, t := range b.List() {
				if t.State != daemon.StateStopped {
					hs = append(hs, t.Hash)
				}
			}
			return hs, nil
		}
		h, err := one(x)
		return []string{h}, err
	case json.Number:
		h, err := one(x)
		return []string{h}, err
	case []any:
		if len(x) > 100000 {
			return nil, errors.New("too many ids")
		}
		var hs []string
		for _, e := range x {
			h, err := one(e)
			if err != nil {
				return nil, err
			}
			hs = append(hs, h)
		}
		return hs, nil
	}
	return nil, errors.New("bad ids")
}

func (s *Server) torrentAdd(r *http.Request, args map[string]any) (any, error) {
	b := s.cfg.Backend
	o := daemon.AddOptions{Paused: asBool(args["paused"])}
	if d, ok := args["download-dir"].(string); ok {
		o.Dir = d
	}
	var h string
	var err error
	if meta, ok := args["metainfo"].(string); ok && meta != "" {
		data, derr := base64.StdEncoding.DecodeString(meta)
		if derr != nil {
			return nil, fmt.Errorf("metainfo is not base64: %w", derr)
		}
		h, err = b.AddTorrent(data, o)
	} else if fn, ok := args["filename"].(string); ok && fn != "" {
		// Only magnets and URLs: a local path would let a client read any
		// file the daemon can (use the watch folder or metainfo instead).
		h, err = b.AddURL(r.Context(), strings.TrimSpace(fn), o)
	} else {
		return nil, errors.New("torrent-add needs metainfo or filename")
	}
	if errors.Is(err, daemon.ErrExists) {
		d, gerr := b.Get(h)
		if gerr != nil {
			return nil, err
		}
		return map[string]any{"torrent-duplicate": map[string]any{"id": d.ID, "name": d.Name, "hashString": d.Hash}}, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := b.Get(h)
	if err != nil {
		return nil, err
	}
	return map[string]any{"torrent-added": map[string]any{"id": d.ID, "name": d.Name, "hashString": d.Hash}}, nil
}

func asBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		return x.String() != "0"
	case string:
		return x == "true" || x == "1"
	}
	return false
}

func asInt(v any) (int64, bool) {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil {
			return int64(f), true
		}
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}
