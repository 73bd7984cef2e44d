// Package webui is the daemon's HTTP face: a JSON API with server-sent
// events, the Transmission RPC at /transmission/rpc, Prometheus metrics at
// /metrics, stream URLs, and the web pages embedded in the binary. It holds
// no business logic: every action is a call on the Backend (the daemon's
// manager implements it).
//
// Safety (see docs/daemon.md):
//   - a Host header that is not an IP literal, "localhost" or a configured
//     name is refused (421), which closes the DNS-rebinding hole;
//   - every state-changing request carries the session token
//     (X-Shoal-Token, or X-Transmission-Session-Id for the RPC, which answers
//     409 with the token as Transmission does);
//   - with a user name set, every request needs HTTP basic auth (the command
//     refuses to listen beyond loopback without one);
//   - bodies are capped (MaxBody), headers time out, connections are
//     bounded, and no request names a path outside the data folder.
package webui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/daemon"
	"github.com/shoal-p2p/shoal/internal/session"
)

// Backend is what the HTTP layer needs of the daemon; *daemon.Manager
// implements it.
type Backend interface {
	List() []daemon.View
	Get(hash string) (daemon.Detail, error)
	HashByID(id int) (string, bool)
	AddTorrent(data []byte, o daemon.AddOptions) (string, error)
	AddURL(ctx context.Context, url string, o daemon.AddOptions) (string, error)
	Start(hash string) error
	StartNow(hash string) error
	Stop(hash string) error
	Remove(hash string, deleteData bool) error
	Verify(hash string) error
	Set(hash string, c daemon.Changes) error
	Settings() daemon.Settings
	UpdateSettings(fn func(*daemon.Settings)) error
	Swarm(hash string) ([]session.PeerInfo, []session.ChokeRound, error)
	PieceMap(hash string) ([]bool, error)
	Running(hash string) (*session.Torrent, error)
	Totals() daemon.Totals
	Subscribe() (<-chan struct{}, func())
	DataDir() string
}

// Config configures a Server.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// Hosts are extra host names accepted in the Host header (IP literals
	// and "localhost" always are).
	Hosts []string
	// User and Password turn on HTTP basic auth for every request.
	User, Password string
	// MaxBody caps request bodies (default 16 MiB: a base64 .torrent).
	MaxBody int64
	// MaxConns bounds simultaneous connections (default 256).
	MaxConns int
	// Version is shown by session-get.
	Version string
	// PeerPort is reported by session-get.
	PeerPort int
	// DHT, when set, gives the DHT node's figures for /metrics (nil: the
	// daemon runs without the DHT and /metrics reports none).
	DHT func() DHTStats
	// Punch, when set, gives the hole-punching counters for /metrics.
	Punch func() PunchStats
}

// PunchStats are the hole-punching counters /metrics exports.
type PunchStats struct {
	Attempts, Successes, Fallbacks, Direct int64 // upgrades of relayed connections
	// BEP 55 ut_holepunch: rendezvous asked for, pairs introduced, connects
	// acted on and their outcomes
	HPRequests, HPRelayed, HPAttempts, HPSuccesses, HPFallbacks int64
}

// DHTStats are the DHT node's figures /metrics exports.
type DHTStats struct {
	Nodes                                                    int // nodes in the routing table
	QueriesIn, QueriesOut, Timeouts, RateLimited, BadPackets int
}

// Server serves the daemon's HTTP interface.
type Server struct {
	cfg   Config // static after New
	log   *slog.Logger
	token string // session token, static after New
	mux   *http.ServeMux

	mu      sync.Mutex // guards started
	started time.Time
}

// New builds a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 16 << 20
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	var b [16]byte
	rand.Read(b[:])
	s := &Server{cfg: cfg, log: cfg.Logger, token: hex.EncodeToString(b[:]), mux: http.NewServeMux(), started: time.Now()}
	s.routes()
	return s
}

// Token is the session token state-changing requests must carry.
func (s *Server) Token() string { return s.token }

// Handler is the whole HTTP interface with its safety checks.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			http.Error(w, "host not allowed: use the daemon's address or a name given with --host", http.StatusMisdirectedRequest)
			return
		}
		if s.cfg.User != "" && !s.authOK(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="shoal"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		}
		s.mux.ServeHTTP(w, r)
	})
}

// hostAllowed accepts IP literals, localhost and configured names.
func (s *Server) hostAllowed(host string) bool {
	if host == "" {
		return false
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "localhost" {
		return true
	}
	for _, a := range s.cfg.Hosts {
		if strings.EqualFold(a, h) {
			return true
		}
	}
	return false
}

func (s *Server) authOK(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hu, hp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	wu, wp := sha256.Sum256([]byte(s.cfg.User)), sha256.Sum256([]byte(s.cfg.Password))
	return subtle.ConstantTimeCompare(hu[:], wu[:])&subtle.ConstantTimeCompare(hp[:], wp[:]) == 1
}

func (s *Server) tokenOK(r *http.Request) bool {
	t := r.Header.Get("X-Shoal-Token")
	if t == "" {
		t = r.Header.Get("X-Transmission-Session-Id")
	}
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}

// Serve answers on ln until ctx ends, with timeouts against slow clients
// and a bound on simultaneous connections.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // bodies are capped; a slow upload ends here
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(&limitListener{Listener: ln, sem: make(chan struct{}, s.cfg.MaxConns)})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// limitListener blocks Accept while MaxConns connections are open.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// IsLoopback reports whether a listen address only accepts loopback
// connections (the command requires auth otherwise).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
