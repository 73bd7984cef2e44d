package clients

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Program names understood by Have and Require.
const (
	Opentracker        = "opentracker"
	TransmissionDaemon = "transmission-daemon" // with transmission-remote
	TransmissionShow   = "transmission-show"
	Aria2              = "aria2c"
	Libtorrent         = "python3-libtorrent" // /usr/bin/python3 with `import libtorrent`
	Mktorrent          = "mktorrent"
	Redis              = "redis-server"
)

// Python is the interpreter that has the libtorrent module (Debian's).
const Python = "/usr/bin/python3"

// RequireEnv is the environment variable that turns a missing program from a
// skip into a failure (set by CI).
const RequireEnv = "SHOAL_REQUIRE_INTEROP"

var (
	haveMu    sync.Mutex
	haveCache = map[string]bool{}
)

// Have reports whether the named program (one of the constants above) is
// installed and usable.
func Have(name string) bool {
	haveMu.Lock()
	defer haveMu.Unlock()
	if v, ok := haveCache[name]; ok {
		return v
	}
	var ok bool
	switch name {
	case Libtorrent:
		_, _, err := runCmd(30*time.Second, Python, "-c", "import libtorrent")
		ok = err == nil
	case TransmissionDaemon:
		ok = lookPath("transmission-daemon") && lookPath("transmission-remote")
	default:
		ok = lookPath(name)
	}
	haveCache[name] = ok
	return ok
}

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// Require skips the test unless every named program is available; when the
// environment has SHOAL_REQUIRE_INTEROP=1 it fails the test instead.
func Require(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if !Have(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("required interop programs missing: %v (%s=1)", missing, RequireEnv)
	}
	t.Skipf("interop programs missing: %v (install them, see .ci/run)", missing)
}

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// Port range for FreePort: below the ephemeral range (32768+), so an
// outgoing connection's source port never takes a later listener's port.
const (
	portLo = 20000
	portHi = 32000
)

// FreePort returns a port that is free for both TCP and UDP on 127.0.0.1,
// in [20000, 32000), never the same twice in one test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 500 {
		p := portLo + rand.IntN(portHi-portLo)
		if portUsed[p] {
			continue
		}
		if portFree(p) {
			portUsed[p] = true
			return p
		}
	}
	t.Fatalf("no free port in [%d, %d)", portLo, portHi)
	return 0
}

func portFree(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// WaitListening waits until a TCP connection to addr succeeds.
func WaitListening(addr string, timeout time.Duration) error {
	err := poll(timeout, 100*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err != nil {
		return fmt.Errorf("nothing listening on %s after %v", addr, timeout)
	}
	return nil
}
