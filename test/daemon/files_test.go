package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The multi-file torrent of these tests: piece length 64 KiB, three files
// whose boundaries fall inside pieces, so b.bin shares its first piece with
// a.bin and its last with c.bin.
const pieceLen = 65536

var multiFiles = []struct {
	name string
	size int
}{{"a.bin", 700_000}, {"b.bin", 1_500_000}, {"c.bin", 400_000}}

type multiSwarm struct {
	torrent, dir string
	data         [][]byte
	total        int64
}

// newMultiSwarm creates the folder "multi" with the three files, its
// .torrent, a tracker and a seeder.
func newMultiSwarm(t *testing.T, seederArgs ...string) *multiSwarm {
	t.Helper()
	src := t.TempDir()
	s := &multiSwarm{dir: "multi"}
	os.MkdirAll(filepath.Join(src, s.dir), 0o755)
	r := rand.New(rand.NewPCG(42, 9))
	for _, f := range multiFiles {
		b := make([]byte, f.size)
		for i := range b {
			b[i] = byte(r.Uint32() | 1) // never zero: an unwritten byte reads as 0
		}
		if err := os.WriteFile(filepath.Join(src, s.dir, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s.data = append(s.data, b)
		s.total += int64(f.size)
	}
	tp := freePort(t)
	start(t, "tracker", "--http", fmt.Sprintf("127.0.0.1:%d", tp), "--udp", "", "--interval", "3s")
	s.torrent = filepath.Join(t.TempDir(), "multi.torrent")
	out, err := exec.Command(shoalBin, "create", "-t", fmt.Sprintf("http://127.0.0.1:%d/announce", tp), "--piece-length", fmt.Sprint(pieceLen), "-o", s.torrent, filepath.Join(src, s.dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	args := append([]string{"seed", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-dht", "-d", src}, seederArgs...)
	start(t, append(args, s.torrent)...)
	return s
}

// checkSkipped checks the files on disk after a download that skipped
// b.bin: a.bin and c.bin are whole, and b.bin is absent or holds nothing
// beyond the two pieces it shares with them (unwritten bytes read as 0; the
// source bytes are never 0).
func (s *multiSwarm) checkSkipped(t *testing.T, data string) {
	t.Helper()
	for _, i := range []int{0, 2} {
		got, err := os.ReadFile(filepath.Join(data, s.dir, multiFiles[i].name))
		if err != nil || !bytes.Equal(got, s.data[i]) {
			t.Fatalf("wanted file %s: %v (content equal: %v)", multiFiles[i].name, err, bytes.Equal(got, s.data[i]))
		}
	}
	got, err := os.ReadFile(filepath.Join(data, s.dir, "b.bin"))
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	off := int64(multiFiles[0].size)                              // b.bin's offset in the torrent
	lo := (off/pieceLen + 1) * pieceLen                           // first piece wholly inside b.bin
	hi := (off + int64(multiFiles[1].size)) / pieceLen * pieceLen // end of the last such piece
	written := 0
	for p := lo - off; p < hi-off && p < int64(len(got)); p++ {
		if got[p] != 0 {
			written++
		}
	}
	if written > 0 {
		t.Fatalf("skipped file b.bin: %d bytes written inside the pieces only it uses (%d..%d of the file)", written, lo-off, hi-off)
	}
}

// TestFilesTransmissionRemote skips a file with transmission-remote -G
// before starting, checks that only the wanted files arrive and that
// Transmission's figures (percentDone, sizeWhenDone, the files list) count
// the wanted part, then wants it again with -g while the torrent runs, and
// checks the tracker figures -it shows.
func TestFilesTransmissionRemote(t *testing.T) {
	if _, err := exec.LookPath("transmission-remote"); err != nil {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatal("transmission-remote not installed")
		}
		t.Skip("transmission-remote not installed")
	}
	s := newMultiSwarm(t)
	h, _ := infoHash(t, s.torrent)
	data := t.TempDir()
	d := startDaemon(t, data)
	trRemote(t, d.ui, "--start-paused")
	if out := trRemote(t, d.ui, "-a", s.torrent); !strings.Contains(out, "success") {
		t.Fatalf("add: %s", out)
	}
	v := d.waitFor(t, h, "added stopped", 10*time.Second, func(v tview) bool { return v.State == "stopped" })
	id := itoa(v.ID)
	trRemote(t, d.ui, "-t", id, "-G", "1")
	files := trRemote(t, d.ui, "-t", id, "-f")
	if !hasLineWith(files, " No ", "b.bin") || !hasLineWith(files, " Yes ", "a.bin") || !hasLineWith(files, " Yes ", "c.bin") {
		t.Fatalf("-f after -G 1:\n%s", files)
	}
	trRemote(t, d.ui, "-t", id, "-s")
	d.waitFor(t, h, "wanted files done", 60*time.Second, func(v tview) bool { return v.State == "seeding" && v.Progress == 1 })
	s.checkSkipped(t, data)

	tg := rpcTorrent(t, d, v.ID, "percentDone", "sizeWhenDone", "leftUntilDone", "totalSize", "status", "wanted", "trackerStats")
	wantSize := wantedBytes(s.total, []bool{true, false, true})
	if tg.PercentDone != 1 || tg.LeftUntilDone != 0 || tg.SizeWhenDone != wantSize || tg.TotalSize != s.total || tg.Status != 6 {
		t.Fatalf("torrent-get after the wanted files: %+v (want sizeWhenDone %d)", tg, wantSize)
	}
	if fmt.Sprint(tg.Wanted) != "[1 0 1]" {
		t.Fatalf("wanted = %v", tg.Wanted)
	}
	if len(tg.TrackerStats) != 1 || tg.TrackerStats[0].AnnounceCount < 1 || tg.TrackerStats[0].LastAnnouncePeerCount < 0 ||
		tg.TrackerStats[0].LastAnnounceResult != "Success" || tg.TrackerStats[0].SeederCount < 1 || !strings.HasPrefix(tg.TrackerStats[0].Host, "http://127.0.0.1:") {
		t.Fatalf("trackerStats: %+v", tg.TrackerStats)
	}
	if out := trRemote(t, d.ui, "-t", id, "-it"); !strings.Contains(out, "Got a list of") {
		t.Fatalf("-it shows no announce answer:\n%s", out)
	}

	// (The last answer, to our "completed", may list no peers: we are a seed
	// and so is the other one. SeederCount counts the seeder, and us.)

	// Want b.bin again while seeding: it downloads, and the torrent is
	// complete.
	trRemote(t, d.ui, "-t", id, "-g", "1")
	d.waitFor(t, h, "everything", 60*time.Second, func(v tview) bool {
		return v.State == "seeding" && v.Progress == 1 && v.Have == s.total
	})
	got, _ := os.ReadFile(filepath.Join(data, s.dir, "b.bin"))
	if !bytes.Equal(got, s.data[1]) {
		t.Fatal("b.bin after -g: content differs")
	}
	if out := trRemote(t, d.ui, "-t", id, "-f"); hasLineWith(out, " No ", ".bin") {
		t.Fatalf("-f after -g 1:\n%s", out)
	}
}

// TestFilesJSONAPI skips a file through PATCH /api/torrents/{hash} before
// the start; the wanted files alone arrive and the torrent seeds them.
func TestFilesJSONAPI(t *testing.T) {
	s := newMultiSwarm(t)
	h, _ := infoHash(t, s.torrent)
	data := t.TempDir()
	d := startDaemon(t, data)
	raw, _ := os.ReadFile(s.torrent)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw, "paused": true}); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body := d.do("PATCH", "/api/torrents/"+h, map[string]any{"files": []map[string]any{{"index": 1, "wanted": false}, {"index": 2, "priority": 1}}}); code != 200 {
		t.Fatalf("set files: %d %s", code, body)
	}
	if code, body := d.do("PATCH", "/api/torrents/"+h, map[string]any{"files": []map[string]any{{"index": 7, "wanted": false}}}); code != 400 {
		t.Fatalf("a file that does not exist: %d %s", code, body)
	}
	if code, body := d.do("POST", "/api/torrents/"+h+"/start", nil); code != 200 {
		t.Fatalf("start: %d %s", code, body)
	}
	d.waitFor(t, h, "wanted files done", 60*time.Second, func(v tview) bool { return v.State == "seeding" && v.Progress == 1 })
	s.checkSkipped(t, data)
	var det struct {
		SizeWhenDone int64 `json:"size_when_done"`
		Left         int64 `json:"left"`
		Downloaded   int64 `json:"downloaded"`
		Files        []struct {
			Wanted   bool  `json:"wanted"`
			Priority int   `json:"priority"`
			Have     int64 `json:"have"`
		} `json:"files"`
	}
	if err := d.getJSON("/api/torrents/"+h, &det); err != nil {
		t.Fatal(err)
	}
	want := wantedBytes(s.total, []bool{true, false, true})
	if det.SizeWhenDone != want || det.Left != 0 || len(det.Files) != 3 || det.Files[1].Wanted || det.Files[2].Priority != 1 {
		t.Fatalf("detail: %+v (want size_when_done %d)", det, want)
	}
	if det.Files[1].Have >= int64(multiFiles[1].size)/2 || det.Downloaded > want+want/10 {
		t.Fatalf("the skipped file was fetched: b.bin have %d, downloaded %d of %d wanted", det.Files[1].Have, det.Downloaded, want)
	}
	// A restart keeps the choice and the torrent seeds without fetching b.bin.
	d.stop()
	d = startDaemon(t, data)
	d.waitFor(t, h, "seeding after restart", 30*time.Second, func(x tview) bool { return x.State == "seeding" && x.Progress == 1 })
	time.Sleep(1500 * time.Millisecond)
	s.checkSkipped(t, data)
}

// wantedBytes is sizeWhenDone for a fresh download of the multi torrent:
// the bytes of every piece a wanted file touches.
func wantedBytes(total int64, wanted []bool) int64 {
	np := (total + pieceLen - 1) / pieceLen
	want := make([]bool, np)
	var off int64
	for i, f := range multiFiles {
		if wanted[i] {
			for p := off / pieceLen; p <= (off+int64(f.size)-1)/pieceLen; p++ {
				want[p] = true
			}
		}
		off += int64(f.size)
	}
	var n int64
	for p, w := range want {
		if w {
			n += min(pieceLen, total-int64(p)*pieceLen)
		}
	}
	return n
}

type rpcTorrentFields struct {
	PercentDone   float64 `json:"percentDone"`
	SizeWhenDone  int64   `json:"sizeWhenDone"`
	LeftUntilDone int64   `json:"leftUntilDone"`
	TotalSize     int64   `json:"totalSize"`
	Status        int     `json:"status"`
	Wanted        []int   `json:"wanted"`
	DownloadLimit int64   `json:"downloadLimit"`
	DownLimited   bool    `json:"downloadLimited"`
	TrackerStats  []struct {
		AnnounceCount         int    `json:"announceCount"`
		LastAnnounceResult    string `json:"lastAnnounceResult"`
		LastAnnouncePeerCount int    `json:"lastAnnouncePeerCount"`
		SeederCount           int    `json:"seederCount"`
		LeecherCount          int    `json:"leecherCount"`
		Host                  string `json:"host"`
	} `json:"trackerStats"`
}

// rpcCall makes one Transmission RPC call (fetching the session id first).
func rpcCall(t *testing.T, d *daemonProc, method string, args map[string]any, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"method": method, "arguments": args})
	post := func(sid string) (*rpcResp, int) {
		req, _ := http.NewRequest("POST", d.url+"/transmission/rpc", bytes.NewReader(body))
		req.Header.Set("X-Transmission-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r rpcResp
		if resp.StatusCode == 409 {
			return &rpcResp{sid: resp.Header.Get("X-Transmission-Session-Id")}, 409
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return &r, resp.StatusCode
	}
	r, code := post("")
	if code == 409 {
		r, code = post(r.sid)
	}
	if code != 200 || r.Result != "success" {
		t.Fatalf("%s: %d %q", method, code, r.Result)
	}
	if out != nil {
		if err := json.Unmarshal(r.Arguments, out); err != nil {
			t.Fatal(err)
		}
	}
}

type rpcResp struct {
	Result    string          `json:"result"`
	Arguments json.RawMessage `json:"arguments"`
	sid       string
}

func rpcTorrent(t *testing.T, d *daemonProc, id int, fields ...string) rpcTorrentFields {
	t.Helper()
	var out struct{ Torrents []rpcTorrentFields }
	rpcCall(t, d, "torrent-get", map[string]any{"ids": []int{id}, "fields": fields}, &out)
	if len(out.Torrents) != 1 {
		t.Fatalf("torrent-get: %d torrents", len(out.Torrents))
	}
	return out.Torrents[0]
}
