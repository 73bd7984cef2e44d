package stream

import (
	"context"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// File describes what Handler serves.
type File struct {
	// Open returns a fresh reader for one request; reads must end when ctx
	// (the request's context) ends. Each request gets its own reader, so
	// concurrent requests (a player probing the tail while playing) each
	// keep their own window.
	Open    func(ctx context.Context) (io.ReadSeekCloser, error)
	Name    string    // file name: gives the Content-Type
	ModTime time.Time // Last-Modified and If-Range by date; zero to omit
	ETag    string    // strong validator with quotes, e.g. `"<infohash>-3"`; "" to omit
}

// Handler serves f with http.ServeContent: GET and HEAD with Range,
// If-Range, If-None-Match and If-Modified-Since. It is what `shoal stream`
// and the daemon mount.
func Handler(f File) http.Handler {
	ctype := ContentType(f.Name)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rd, err := f.Open(req.Context())
		if err != nil {
			http.Error(w, "stream unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer rd.Close()
		h := w.Header()
		h.Set("Content-Type", ctype) // set: ServeContent would otherwise sniff
		if f.ETag != "" {
			h.Set("ETag", f.ETag)
		}
		h.Set("Accept-Ranges", "bytes")
		http.ServeContent(w, req, f.Name, f.ModTime, rd)
	})
}

// mediaTypes lists the types players care about; mime's tables (which read
// /etc/mime.types) do not always know them.
var mediaTypes = map[string]string{
	".webm": "video/webm",
	".mkv":  "video/x-matroska",
	".mka":  "audio/x-matroska",
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".m4a":  "audio/mp4",
	".mov":  "video/quicktime",
	".avi":  "video/x-msvideo",
	".ts":   "video/mp2t",
	".m2ts": "video/mp2t",
	".mpg":  "video/mpeg",
	".mpeg": "video/mpeg",
	".ogv":  "video/ogg",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".opus": "audio/ogg",
	".mp3":  "audio/mpeg",
	".flac": "audio/flac",
	".wav":  "audio/wav",
	".aac":  "audio/aac",
	".wmv":  "video/x-ms-wmv",
	".flv":  "video/x-flv",
	".3gp":  "video/3gpp",
	".vtt":  "text/vtt; charset=utf-8",
	".srt":  "application/x-subrip",
}

// ContentType returns the media type for a file name by its extension,
// application/octet-stream when unknown.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// IsMedia reports whether the name has an audio or video extension.
func IsMedia(name string) bool {
	t := ContentType(name)
	return strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/")
}
