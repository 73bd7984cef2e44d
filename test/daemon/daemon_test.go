package daemon

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func infoHash(t *testing.T, torrent string) (hash, magnet string) {
	t.Helper()
	out, err := exec.Command(shoalBin, "info", "--json", torrent).Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		InfoHash string `json:"info_hash"`
		Magnet   string `json:"magnet"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.InfoHash, v.Magnet
}

// TestTransmissionRemote drives the daemon with Debian's transmission-remote:
// add by file and by magnet, list, stop, start, remove (with data).
func TestTransmissionRemote(t *testing.T) {
	if _, err := exec.LookPath("transmission-remote"); err != nil {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatal("transmission-remote not installed")
		}
		t.Skip("transmission-remote not installed")
	}
	s1 := newSwarm(t, 3<<20)
	s2 := newSwarm(t, 1<<20+4321)
	h1, _ := infoHash(t, s1.torrent)
	h2, magnet2 := infoHash(t, s2.torrent)
	if !strings.Contains(magnet2, "tr=") {
		t.Fatalf("magnet has no tracker: %s", magnet2)
	}
	data := t.TempDir()
	d := startDaemon(t, data)

	out := trRemote(t, d.ui, "-a", s1.torrent)
	if !strings.Contains(out, "success") {
		t.Fatalf("add file: %s", out)
	}
	d.waitFor(t, h1, "100%", 60*time.Second, func(v tview) bool { return v.Progress == 1 })
	got, _ := os.ReadFile(filepath.Join(data, s1.name))
	if !bytes.Equal(got, s1.data) {
		t.Fatal("file added by transmission-remote: content differs")
	}
	out = trRemote(t, d.ui, "-a", magnet2)
	if !strings.Contains(out, "success") {
		t.Fatalf("add magnet: %s", out)
	}
	v2 := d.waitFor(t, h2, "magnet 100%", 60*time.Second, func(v tview) bool { return v.Progress == 1 && v.Size == int64(len(s2.data)) })

	out = trRemote(t, d.ui, "-l")
	if !hasLineWith(out, "100%", s1.name) || !hasLineWith(out, "Sum:") {
		t.Fatalf("list:\n%s", out)
	}
	v1 := d.waitFor(t, h1, "listed", time.Second, func(tview) bool { return true })
	id := func(v tview) string { return itoa(v.ID) }

	trRemote(t, d.ui, "-t", id(v1), "-S")
	d.waitFor(t, h1, "stopped", 10*time.Second, func(v tview) bool { return v.State == "stopped" })
	if out := trRemote(t, d.ui, "-l"); !hasLineWith(out, "Stopped", s1.name) {
		t.Fatalf("list after stop:\n%s", out)
	}
	trRemote(t, d.ui, "-t", id(v1), "-s")
	d.waitFor(t, h1, "seeding again", 20*time.Second, func(v tview) bool { return v.State == "seeding" })

	// Remove the magnet one keeping data, the file one with its data.
	trRemote(t, d.ui, "-t", id(v2), "-r")
	trRemote(t, d.ui, "-t", id(v1), "--remove-and-delete")
	deadline := time.Now().Add(10 * time.Second)
	for len(d.list(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := d.list(t); len(l) != 0 {
		t.Fatalf("still listed after remove: %+v", l)
	}
	if _, err := os.Stat(filepath.Join(data, s1.name)); !os.IsNotExist(err) {
		t.Errorf("remove-and-delete left the data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, s2.name)); err != nil {
		t.Errorf("remove without data deleted the data: %v", err)
	}
	if out := trRemote(t, d.ui, "-l"); hasLineWith(out, s1.name) {
		t.Fatalf("list after remove:\n%s", out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestKill9 kills the daemon with SIGKILL mid-download and restarts it:
// the torrent comes back, keeps every piece verified before the kill, and
// finishes with the right bytes.
func TestKill9(t *testing.T) {
	s := newSwarm(t, 24<<20, "--upload-limit", "2M")
	h, _ := infoHash(t, s.torrent)
	data := t.TempDir()
	d := startDaemon(t, data)
	raw, _ := os.ReadFile(s.torrent)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw}); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	// A second, paused torrent must come back paused.
	s2 := newSwarm(t, 100<<10)
	h2, _ := infoHash(t, s2.torrent)
	raw2, _ := os.ReadFile(s2.torrent)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw2, "paused": true}); code != 201 {
		t.Fatalf("add paused: %d %s", code, body)
	}
	before := d.waitFor(t, h, "25% downloaded", 90*time.Second, func(v tview) bool { return v.Progress >= 0.25 })
	if before.Progress == 1 {
		t.Skip("download finished before the kill; the rate limit did not hold")
	}
	// Wait one supervision tick so the API value is not ahead of what the
	// engine reported, then kill.
	time.Sleep(1200 * time.Millisecond)
	before = d.waitFor(t, h, "listed", time.Second, func(tview) bool { return true })
	d.kill9()

	d2 := startDaemon(t, data)
	l := d2.list(t)
	if len(l) != 2 {
		t.Fatalf("after kill -9: %d torrents listed, want 2: %+v", len(l), l)
	}
	d2.waitFor(t, h2, "paused", time.Second, func(v tview) bool { return v.State == "stopped" })
	after := d2.waitFor(t, h, "running again", 60*time.Second, func(v tview) bool { return v.State == "downloading" || v.State == "seeding" })
	if after.Have < before.Have {
		t.Fatalf("verified bytes lost by kill -9: %d before, %d after restart", before.Have, after.Have)
	}
	t.Logf("before kill: %d bytes verified; after restart: %d", before.Have, after.Have)
	d2.waitFor(t, h, "100%", 120*time.Second, func(v tview) bool { return v.Progress == 1 })
	got, _ := os.ReadFile(filepath.Join(data, s.name))
	if !bytes.Equal(got, s.data) {
		t.Fatal("content differs after kill -9 and resume")
	}
}

// TestHostileHTTP sends what an attacker's page or a broken client would.
func TestHostileHTTP(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	raw := func(req string) string {
		c, err := net.DialTimeout("tcp", d.ui, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(req))
		var buf bytes.Buffer
		buf.ReadFrom(c)
		return buf.String()
	}
	status := func(resp string) string {
		line, _, _ := strings.Cut(resp, "\r\n")
		return line
	}
	// DNS rebinding: a foreign name in Host.
	if r := raw("GET /api/session HTTP/1.1\r\nHost: evil.example:9091\r\nConnection: close\r\n\r\n"); !strings.Contains(status(r), "421") || strings.Contains(r, "token") {
		t.Errorf("foreign Host: %s", status(r))
	}
	if r := raw("POST /transmission/rpc HTTP/1.1\r\nHost: attacker.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"); !strings.Contains(status(r), "421") {
		t.Errorf("foreign Host on RPC: %s", status(r))
	}
	// Path traversal through the static files and the stream URL.
	for _, p := range []string{"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "/static/../../../etc/passwd", "/stream/..%2f..%2fetc/passwd"} {
		r := raw("GET " + p + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
		if strings.Contains(r, "root:") {
			t.Errorf("%s leaked /etc/passwd", p)
		}
	}
	// State changes without the token.
	req, _ := json.Marshal(map[string]any{"url": "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"})
	if r := raw("POST /api/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(req)) + "\r\nConnection: close\r\n\r\n" + string(req)); !strings.Contains(status(r), "403") {
		t.Errorf("add without token: %s", status(r))
	}
	if r := raw("POST /transmission/rpc HTTP/1.1\r\nHost: localhost\r\nContent-Length: 26\r\nConnection: close\r\n\r\n{\"method\":\"torrent-stop\"}\n"); !strings.Contains(status(r), "409") {
		t.Errorf("RPC without session id: %s", status(r))
	}
	if len(d.list(t)) != 0 {
		t.Fatal("a refused request added a torrent")
	}
	// Folders and files outside the data folder.
	rpc := func(body string) string {
		r := raw("POST /transmission/rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Transmission-Session-Id: " + d.token + "\r\nContent-Length: " + itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
		return r
	}
	for _, body := range []string{
		`{"method":"torrent-add","arguments":{"filename":"/etc/passwd"}}`,
		`{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567","download-dir":"/etc"}}`,
		`{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567","download-dir":"../../tmp"}}`,
		`{"method":"session-set","arguments":{"download-dir":"/root"}}`,
	} {
		if r := rpc(body); strings.Contains(r, `"result":"success"`) {
			t.Errorf("accepted %s", body)
		}
	}
	if len(d.list(t)) != 0 {
		t.Fatal("a torrent was added outside the data folder")
	}
	// Oversized body: refused, daemon still answers.
	big := bytes.Repeat([]byte("a"), 20<<20)
	c, err := net.Dial("tcp", d.ui)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("POST /api/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Shoal-Token: " + d.token + "\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(big)+2) + "\r\n\r\n\""))
	go c.Write(big)
	var buf bytes.Buffer
	buf.ReadFrom(c)
	c.Close()
	if !strings.Contains(status(buf.String()), "413") {
		t.Errorf("oversized body: %q", status(buf.String()))
	}
	// Slow clients: many connections that never finish their headers do
	// not stop others from being served.
	var slow []net.Conn
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", d.ui)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "))
		slow = append(slow, c)
	}
	var s struct{ Token string }
	if err := d.getJSON("/api/session", &s); err != nil || s.Token != d.token {
		t.Errorf("served nothing while slow clients hang: %v", err)
	}
	for _, c := range slow {
		c.Close()
	}
}

// TestNonLoopbackNeedsAuth: the daemon refuses to listen beyond loopback
// without a user and password, and with them asks for basic auth.
func TestNonLoopbackNeedsAuth(t *testing.T) {
	out, err := exec.Command(shoalBin, "daemon", "--ui", "0.0.0.0:0", "--no-dht", "--data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--user") {
		t.Fatalf("non-loopback without auth: err=%v\n%s", err, out)
	}
	d := &daemonProc{}
	ui := "127.0.0.1:" + itoa(freePort(t))
	d.proc = start(t, "daemon", "--ui", ui, "--listen", "127.0.0.1:"+itoa(freePort(t)), "--no-dht", "--data", t.TempDir(), "--user", "admin", "--password", "pw")
	d.url, d.ui = "http://"+ui, ui
	var code int
	for i := 0; i < 100; i++ {
		code, _ = d.do("GET", "/api/session", nil)
		if code != 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 401 {
		t.Fatalf("without credentials: %d, want 401", code)
	}
	if out := trRemote(t, ui, "-n", "admin:pw", "-l"); !strings.Contains(out, "Sum:") {
		t.Fatalf("transmission-remote with auth: %s", out)
	}
	if out, err := exec.Command("transmission-remote", ui, "-n", "admin:wrong", "-l").CombinedOutput(); err == nil && strings.Contains(string(out), "Sum:") {
		t.Fatal("wrong password accepted")
	}
}
