package webui

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/daemon"
)

// setBackend records the Changes torrent-set makes; its torrent lists two
// files around a padding file (index 1), as torrent-get shows them.
type setBackend struct {
	Backend
	got []daemon.Changes
}

const setHash = "0123456789012345678901234567890123456789"

func (b *setBackend) HashByID(id int) (string, bool) { return setHash, id == 1 }
func (b *setBackend) Get(string) (daemon.Detail, error) {
	return daemon.Detail{Files: []daemon.FileView{{Index: 0, Path: "a"}, {Index: 2, Path: "b"}}}, nil
}
func (b *setBackend) Set(_ string, c daemon.Changes) error { b.got = append(b.got, c); return nil }

func decodeArgs(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTorrentSetFiles(t *testing.T) {
	for _, c := range []struct {
		args string
		want string // the file changes, as "index:wanted/priority" items
		err  string
	}{
		{`{"ids":[1],"files-unwanted":[1]}`, "2:w=false", ""},
		{`{"ids":[1],"files-wanted":[]}`, "0:w=true 2:w=true", ""},
		{`{"ids":[1],"priority-low":[0],"priority-high":[1]}`, "2:p=1 0:p=-1", ""},
		{`{"ids":[1],"files-unwanted":[2]}`, "", "no file 2"},
		{`{"ids":[1],"files-unwanted":"x"}`, "", "must be a list"},
		{`{"ids":[1],"files-unwanted":[-1]}`, "", "bad file number"},
	} {
		b := &setBackend{}
		s := New(Config{Backend: b})
		err := s.torrentSet(decodeArgs(t, c.args))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || len(b.got) != 1 {
			t.Fatalf("%s: %v, %d calls", c.args, err, len(b.got))
		}
		var items []string
		for _, fc := range b.got[0].Files {
			it := itoa(fc.Index) + ":"
			if fc.Wanted != nil {
				it += "w=" + map[bool]string{true: "true", false: "false"}[*fc.Wanted]
			}
			if fc.Priority != nil {
				it += "p=" + itoa(*fc.Priority)
			}
			items = append(items, it)
		}
		if got := strings.Join(items, " "); got != c.want {
			t.Errorf("%s: changes %q, want %q", c.args, got, c.want)
		}
	}
}

func TestTorrentSetLimits(t *testing.T) {
	b := &setBackend{}
	s := New(Config{Backend: b})
	if err := s.torrentSet(decodeArgs(t, `{"ids":[1],"downloadLimit":250,"downloadLimited":true,"uploadLimited":false}`)); err != nil {
		t.Fatal(err)
	}
	c := b.got[0]
	if c.DownLimit == nil || *c.DownLimit != 250_000 || c.UpLimit == nil || *c.UpLimit != 0 {
		t.Fatalf("limits: down %v up %v", c.DownLimit, c.UpLimit)
	}
}

func TestTrackerStats(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	urls := []string{"udp://[::1]:6969/announce", "http://127.0.0.1/announce?passkey=x"}
	st := trackerStats(urls, daemon.TrackerView{Announces: 3, Failures: 1, LastURL: urls[1], Peers: 7, Seeders: 2, Leechers: -1, LastAt: at})
	if len(st) != 2 || st[0]["host"] != "udp://[::1]:6969" || st[1]["host"] != "http://127.0.0.1:80" {
		t.Fatalf("hosts: %v / %v", st[0]["host"], st[1]["host"])
	}
	if st[0]["announceCount"] != 0 || st[1]["announceCount"] != 3 || st[1]["lastAnnouncePeerCount"] != 7 ||
		st[1]["lastAnnounceResult"] != "Success" || st[1]["seederCount"] != 2 || st[1]["leecherCount"] != -1 || st[1]["lastAnnounceTime"] != at.Unix() {
		t.Fatalf("figures: %v", st[1])
	}
	failed := trackerStats(urls[:1], daemon.TrackerView{Failures: 2, LastError: "connection refused", LastAt: at})
	if failed[0]["lastAnnounceResult"] != "connection refused" || failed[0]["lastAnnounceSucceeded"] != false || failed[0]["failureCount"] != 2 {
		t.Fatalf("failure: %v", failed[0])
	}
	if never := trackerStats(urls[:1], daemon.TrackerView{}); never[0]["hasAnnounced"] != false {
		t.Fatalf("before any announce: %v", never[0])
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
