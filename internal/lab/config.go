package lab

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Client kinds a lab run can measure.
const (
	ClientsShoal      = "shoal"      // shoal get on every peer host
	ClientsLibtorrent = "libtorrent" // python3-libtorrent on every peer host
	ClientsHTTP       = "http"       // client-server: N HTTP clients, one HTTP server
)

// MaxPeers caps N: addresses are 198.18.1.(10+i) and the 2-core machine
// saturates long before.
const MaxPeers = 200

// Config describes one measurement. Zero values mean the reference
// configuration (F = 64 MiB, u = 16 Mbit/s, u_s = 4u, d = 10u, 256 KiB
// pieces, MTU 1500); Normalize fills them in. Static after Normalize.
type Config struct {
	Clients    string    // ClientsShoal, ClientsLibtorrent or ClientsHTTP
	Seeder     string    // ClientsShoal or ClientsLibtorrent; "" = same as Clients (shoal for http)
	N          int       // number of peer hosts
	FileBytes  int64     // F
	PieceBytes int64     // piece length of the torrent
	UpMbit     float64   // u, every peer's upload (unless PeerUpMbit is set)
	PeerUpMbit []float64 // heterogeneous uploads, cycled over the peers
	ServerMbit float64   // u_s; 0 = 4u
	DownMbit   float64   // d; 0 = 10u
	NoDown     bool      // leave downloads unshaped
	MTU        int       // 1500 or up to 9000
	StaticARP  bool      // permanent neighbour entries, deterministic MACs (large N)
	Leave      int       // this many peers (the last ones) are killed mid-run
	LeaveAt    float64   // ... at LeaveAt x d_P2P after the go signal; 0 = 0.5
	Timeout    time.Duration
	Exe        string    // the shoal binary run inside the namespaces
	Python     string    // python with libtorrent; "" = /usr/bin/python3
	LogDir     string    // where logs go; "" = /tmp/shoal-lab-logs/<id>
	Debug      bool      // shoal seeder and peers log at debug level
	ProfileDir string    // if set, every shoal process writes a Go CPU profile here (<clients>-n<N>-seeder.pprof, -p1.pprof, ...)
	Tag        string    // free label copied into results
	Log        io.Writer // progress lines; nil = discard
}

// Normalize fills defaults and validates; it returns an error naming the
// first bad field.
func (c *Config) Normalize() error {
	switch c.Clients {
	case "":
		c.Clients = ClientsShoal
	case ClientsShoal, ClientsLibtorrent, ClientsHTTP:
	default:
		return fmt.Errorf("clients %q: want shoal, libtorrent or http", c.Clients)
	}
	switch c.Seeder {
	case "":
		c.Seeder = c.Clients
		if c.Seeder == ClientsHTTP {
			c.Seeder = ClientsShoal
		}
	case ClientsShoal, ClientsLibtorrent:
	default:
		return fmt.Errorf("seeder %q: want shoal or libtorrent", c.Seeder)
	}
	if c.N < 1 || c.N > MaxPeers {
		return fmt.Errorf("n=%d: want 1..%d peers", c.N, MaxPeers)
	}
	if c.FileBytes == 0 {
		c.FileBytes = 64 << 20
	}
	if c.FileBytes < 1 || c.FileBytes > 4<<30 {
		return fmt.Errorf("file size %d bytes: want 1 B..4 GiB", c.FileBytes)
	}
	if c.PieceBytes == 0 {
		c.PieceBytes = 256 << 10
	}
	if c.PieceBytes < 16<<10 || c.PieceBytes > 16<<20 || c.PieceBytes&(c.PieceBytes-1) != 0 {
		return fmt.Errorf("piece length %d: want a power of two in 16 KiB..16 MiB", c.PieceBytes)
	}
	if c.UpMbit == 0 {
		c.UpMbit = 16
	}
	for _, r := range append([]float64{c.UpMbit}, c.PeerUpMbit...) {
		if !validRate(r) {
			return fmt.Errorf("upload rate %v Mbit/s: want 0.01..10000", r)
		}
	}
	if c.ServerMbit == 0 {
		c.ServerMbit = 4 * c.UpMbit
	}
	if !validRate(c.ServerMbit) {
		return fmt.Errorf("server upload %v Mbit/s: want 0.01..10000", c.ServerMbit)
	}
	if c.DownMbit == 0 {
		c.DownMbit = 10 * c.UpMbit
	}
	if !validRate(c.DownMbit) {
		return fmt.Errorf("download %v Mbit/s: want 0.01..10000", c.DownMbit)
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.MTU < 1280 || c.MTU > 9000 {
		return fmt.Errorf("mtu %d: want 1280..9000", c.MTU)
	}
	if c.Leave < 0 || c.Leave >= c.N {
		return fmt.Errorf("leave=%d: want 0..n-1 (%d)", c.Leave, c.N-1)
	}
	if c.LeaveAt == 0 {
		c.LeaveAt = 0.5
	}
	if !(c.LeaveAt > 0 && c.LeaveAt < 100) {
		return fmt.Errorf("leave-at %v: want a positive fraction of d_P2P", c.LeaveAt)
	}
	if c.Python == "" {
		c.Python = "/usr/bin/python3"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

func validRate(r float64) bool { return r >= 0.01 && r <= 10000 && !math.IsNaN(r) }

// PeerUp returns the upload rate of peer i (0-based).
func (c *Config) PeerUp(i int) float64 {
	if len(c.PeerUpMbit) > 0 {
		return c.PeerUpMbit[i%len(c.PeerUpMbit)]
	}
	return c.UpMbit
}

// PeerDown returns the download rate of peer i (0-based), 0 when unshaped.
func (c *Config) PeerDown(int) float64 {
	if c.NoDown {
		return 0
	}
	return c.DownMbit
}

// Bounds computes d_P2P and d_cs for this configuration.
func (c *Config) Bounds() (Bounds, error) {
	up := make([]float64, c.N)
	down := make([]float64, c.N)
	for i := range c.N {
		up[i], down[i] = c.PeerUp(i), c.PeerDown(i)
	}
	return ComputeBounds(c.FileBytes, c.ServerMbit, up, down)
}

// ParseInts parses a comma-separated list of positive integers ("2,4,8").
func ParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 || v > MaxPeers {
			return nil, fmt.Errorf("%q: want integers 1..%d separated by commas", f, MaxPeers)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// ParseRates parses a comma-separated list of rates in Mbit/s ("8,16,32").
func ParseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !validRate(v) {
			return nil, fmt.Errorf("%q: want rates 0.01..10000 (Mbit/s) separated by commas", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// ParseClients parses a comma-separated list of client kinds
// ("shoal,libtorrent,http"), keeping order and dropping repeats.
func ParseClients(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		switch f {
		case ClientsShoal, ClientsLibtorrent, ClientsHTTP:
		default:
			return nil, fmt.Errorf("%q: want shoal, libtorrent or http", f)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}
