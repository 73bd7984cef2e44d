package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// MaxUploadSize caps a .torrent accepted by POST /upload (the body, or the
// file part of a multipart form).
const MaxUploadSize = 8 << 20

// UploadResponse is the JSON answer of POST /upload.
type UploadResponse struct {
	InfoHash string `json:"info_hash"`
	Name     string `json:"name"`
	Magnet   string `json:"magnet"`
}

// Mux serves a directory over s: GET /search (see Handler) and POST
// /upload (see UploadHandler). now may be nil (time.Now).
func Mux(s Store, log *slog.Logger, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	search := Handler(s, log)
	mux.Handle("/search", search)
	mux.Handle("/search/", search)
	mux.Handle("/upload", UploadHandler(s, log, now))
	return mux
}

// UploadHandler serves POST /upload: the body is a .torrent file, either raw
// (any content type but multipart) or as the "torrent" field of a
// multipart/form-data form. The torrent is parsed with metainfo.Parse and its
// name and file list are put in s. Bodies over MaxUploadSize are refused with
// 413, torrents that do not parse with 400.
func UploadHandler(s Store, log *slog.Logger, now func() time.Time) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			jsonError(w, http.StatusMethodNotAllowed, "use POST with a .torrent body")
			return
		}
		data, status, err := readUpload(w, r)
		if err != nil {
			jsonError(w, status, err.Error())
			return
		}
		mi, err := metainfo.Parse(data)
		if err != nil {
			jsonError(w, http.StatusBadRequest, "not a valid .torrent: "+err.Error())
			return
		}
		e := FromInfo(mi.Info, now())
		if err := s.Put(r.Context(), e); err != nil {
			if errors.Is(err, ErrInvalidEntry) {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			log.Error("catalog upload", "info_hash", mi.InfoHash, "err", err)
			jsonError(w, http.StatusInternalServerError, "could not store the torrent")
			return
		}
		log.Info("catalog: torrent uploaded", "info_hash", mi.InfoHash, "name", e.Name)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(UploadResponse{InfoHash: e.InfoHash.String(), Name: e.Name, Magnet: e.Magnet()})
	})
}

// readUpload returns the .torrent bytes of r, capped at MaxUploadSize.
func readUpload(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	// A multipart envelope adds a little; the file part is capped again below.
	r.Body = http.MaxBytesReader(w, r.Body, MaxUploadSize+64<<10)
	var body io.Reader = r.Body
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("bad multipart form: %w", err)
		}
		body = nil
		for {
			p, err := mr.NextPart()
			if err != nil {
				return nil, uploadStatus(err), fmt.Errorf("multipart form without a \"torrent\" field: %w", err)
			}
			if p.FormName() == "torrent" {
				body = p
				break
			}
		}
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxUploadSize+1))
	if err != nil {
		return nil, uploadStatus(err), fmt.Errorf("reading upload: %w", err)
	}
	if len(data) > MaxUploadSize {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("torrent larger than %d bytes", MaxUploadSize)
	}
	if len(data) == 0 {
		return nil, http.StatusBadRequest, errors.New("empty upload")
	}
	return data, 0, nil
}

func uploadStatus(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
