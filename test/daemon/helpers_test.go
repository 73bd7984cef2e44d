// Package daemon tests `shoal daemon` as a user sees it: the real binary on
// 127.0.0.1 with a shoal tracker and a shoal seeder, driven through its JSON
// API, Debian's transmission-remote, and hostile raw HTTP.
//
//	go test -count=1 -v ./test/daemon/
package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var shoalBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-daemon-test")
	if err != nil {
		panic(err)
	}
	shoalBin = filepath.Join(dir, "shoal")
	out, err := exec.Command("go", "build", "-o", shoalBin, "github.com/shoal-p2p/shoal/cmd/shoal").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build shoal: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port below the ephemeral range.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		uc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		ln.Close()
		if err != nil {
			continue
		}
		uc.Close()
		return p
	}
	t.Fatal("no free port")
	return 0
}

// proc is a started shoal process, ended by PID at cleanup.
type proc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(shoalBin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &buf}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) kill9() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// swarm is a tracker and a seeder for one random file.
type swarm struct {
	src, torrent, name, announce string
	data                         []byte
}

func newSwarm(t *testing.T, size int, seederArgs ...string) *swarm {
	t.Helper()
	s := &swarm{src: t.TempDir(), name: fmt.Sprintf("content-%d.bin", size)}
	tp := freePort(t)
	start(t, "tracker", "--http", fmt.Sprintf("127.0.0.1:%d", tp), "--udp", "", "--interval", "3s")
	s.announce = fmt.Sprintf("http://127.0.0.1:%d/announce", tp)
	s.data = make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range s.data {
		s.data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(s.src, s.name), s.data, 0o644); err != nil {
		t.Fatal(err)
	}
	s.torrent = filepath.Join(t.TempDir(), "content.torrent")
	out, err := exec.Command(shoalBin, "create", "-t", s.announce, "--piece-length", "65536", "-o", s.torrent, filepath.Join(s.src, s.name)).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	args := append([]string{"seed", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-dht", "-d", s.src}, seederArgs...)
	start(t, append(args, s.torrent)...)
	return s
}

// daemonProc runs `shoal daemon` on the given data folder.
type daemonProc struct {
	*proc
	url, ui string
	token   string
}

func startDaemon(t *testing.T, data string, extra ...string) *daemonProc {
	t.Helper()
	ui := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"daemon", "--ui", ui, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-dht", "--data", data}, extra...)
	d := &daemonProc{proc: start(t, args...), ui: ui, url: "http://" + ui}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var s struct{ Token string }
		if err := d.getJSON("/api/session", &s); err == nil && s.Token != "" {
			d.token = s.Token
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not come up:\n%s", d.log)
	return nil
}

func (d *daemonProc) getJSON(path string, v any) error {
	resp, err := http.Get(d.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *daemonProc) do(method, path string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	req.Header.Set("X-Shoal-Token", d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type tview struct {
	ID         int     `json:"id"`
	Hash       string  `json:"hash"`
	Name       string  `json:"name"`
	State      string  `json:"state"`
	Have       int64   `json:"have"`
	Size       int64   `json:"size"`
	Progress   float64 `json:"progress"`
	Error      string  `json:"error"`
	Downloaded int64   `json:"downloaded"`
}

func (d *daemonProc) list(t *testing.T) []tview {
	t.Helper()
	var l []tview
	if err := d.getJSON("/api/torrents", &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// waitFor polls the list until cond holds for the torrent with this hash.
func (d *daemonProc) waitFor(t *testing.T, hash string, what string, timeout time.Duration, cond func(tview) bool) tview {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last tview
	for time.Now().Before(deadline) {
		for _, v := range d.list(t) {
			if v.Hash == hash {
				last = v
				if cond(v) {
					return v
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("torrent %s: waited %s for %s; last %+v\ndaemon log:\n%s", hash, timeout, what, last, d.log)
	return last
}

func trRemote(t *testing.T, ui string, args ...string) string {
	t.Helper()
	out, err := exec.Command("transmission-remote", append([]string{ui}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("transmission-remote %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func hasLineWith(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return true
		}
	}
	return false
}
