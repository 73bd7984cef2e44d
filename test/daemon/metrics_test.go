package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	promName  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	promLabel = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)`)
)

// parseProm parses the Prometheus text exposition format (0.0.4) strictly:
// HELP and TYPE lines name valid metrics, TYPE comes before the metric's
// samples and only once, label values are escaped, values are floats, no
// series appears twice, and a metric's samples are not split apart.
func parseProm(text string) (map[string]string, []sample, error) {
	types := map[string]string{}
	var out []sample
	seen := map[string]bool{}
	done := map[string]bool{} // metrics whose block has ended
	cur := ""
	if !strings.HasSuffix(text, "\n") {
		return nil, nil, fmt.Errorf("output does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		bad := func(why string) error { return fmt.Errorf("line %d %q: %s", i+1, line, why) }
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				continue // a plain comment
			}
			if !promName.MatchString(f[2]) {
				return nil, nil, bad("bad metric name")
			}
			if f[1] == "TYPE" {
				if len(f) != 4 || !map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}[f[3]] {
					return nil, nil, bad("bad type")
				}
				if _, dup := types[f[2]]; dup {
					return nil, nil, bad("second TYPE")
				}
				types[f[2]] = f[3]
			}
			continue
		}
		if line == "" {
			return nil, nil, bad("empty line")
		}
		name, rest := line, ""
		if j := strings.IndexAny(line, "{ "); j >= 0 {
			name, rest = line[:j], line[j:]
		}
		if !promName.MatchString(name) {
			return nil, nil, bad("bad metric name")
		}
		if types[name] == "" {
			return nil, nil, bad("sample before its TYPE")
		}
		if name != cur {
			if done[name] {
				return nil, nil, bad("samples of one metric split apart")
			}
			done[cur], cur = true, name
		}
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := -1
			inq := false
			for k := 1; k < len(rest); k++ {
				switch {
				case rest[k] == '\\' && inq:
					k++
				case rest[k] == '"':
					inq = !inq
				case rest[k] == '}' && !inq:
					end = k
				}
				if end >= 0 {
					break
				}
			}
			if end < 0 {
				return nil, nil, bad("unclosed labels")
			}
			ls := rest[1:end]
			for ls != "" {
				m := promLabel.FindStringSubmatch(ls)
				if m == nil {
					return nil, nil, bad("bad label")
				}
				if _, dup := labels[m[1]]; dup {
					return nil, nil, bad("label twice")
				}
				labels[m[1]] = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(m[2])
				ls = ls[len(m[0]):]
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 1 || len(f) > 2 || !strings.HasPrefix(rest, " ") {
			return nil, nil, bad("want ' value [timestamp]'")
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, nil, bad("value: " + err.Error())
		}
		key := line[:len(line)-len(rest)]
		if seen[key] {
			return nil, nil, bad("series twice")
		}
		seen[key] = true
		out = append(out, sample{name, labels, v})
	}
	return types, out, nil
}

func TestParseProm(t *testing.T) {
	good := "# HELP a_b x\n# TYPE a_b gauge\na_b 1\n# TYPE c counter\nc{x=\"q\\\"\\\\\",y=\"\"} 2.5e3\n"
	if _, s, err := parseProm(good); err != nil || len(s) != 2 || s[1].labels["x"] != `q"\` || s[1].value != 2500 {
		t.Fatalf("good input: %v %+v", err, s)
	}
	for _, bad := range []string{
		"a 1\n",                                 // no TYPE
		"# TYPE a gauge\na 1",                   // no final newline
		"# TYPE a gauge\na one\n",               // value
		"# TYPE a gauge\na{x=\"1} 1\n",          // unclosed
		"# TYPE a gauge\na{x=1} 1\n",            // unquoted
		"# TYPE a gauge\na 1\na 2\n",            // series twice
		"# TYPE a gauge\n# TYPE a gauge\na 1\n", // TYPE twice
		"# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 1\n", // split
		"# TYPE a wrong\na 1\n", // type
	} {
		if _, _, err := parseProm(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, d *daemonProc) (map[string]string, []sample) {
	t.Helper()
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	types, s, err := parseProm(string(b))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, b)
	}
	return types, s
}

// value finds the sample with this name whose labels include want.
func value(t *testing.T, s []sample, name string, want map[string]string) float64 {
	t.Helper()
	for _, x := range s {
		if x.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && x.labels[k] == v
		}
		if ok {
			return x.value
		}
	}
	t.Fatalf("/metrics has no %s%v", name, want)
	return 0
}

// TestMetrics scrapes /metrics while a torrent downloads from a shoal
// seeder and after it finished: the text parses, and the global and
// per-torrent bytes, peers, choke states and hash failures are there with
// the values the transfer implies.
func TestMetrics(t *testing.T) {
	s := newSwarm(t, 3<<20, "--upload-limit", "1M")
	h, _ := infoHash(t, s.torrent)
	data := t.TempDir()
	d := startDaemon(t, data)
	raw, _ := os.ReadFile(s.torrent)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": raw}); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	d.waitFor(t, h, "downloading from the seeder", 30*time.Second, func(v tview) bool { return v.Progress > 0 && v.Progress < 0.8 })
	types, mid := scrape(t, d)
	ih := map[string]string{"infohash": h}
	if got := value(t, mid, "shoal_torrent_peers", ih); got != 1 {
		t.Errorf("mid-download: shoal_torrent_peers = %v, want 1 (the seeder)", got)
	}
	if got := value(t, mid, "shoal_torrent_peer_choke_states", map[string]string{"infohash": h, "state": "unchoking_us"}); got != 1 {
		t.Errorf("mid-download: the seeder is not counted as unchoking us: %v", got)
	}
	if got := value(t, mid, "shoal_torrent_peer_choke_states", map[string]string{"infohash": h, "state": "choking_us"}); got != 0 {
		t.Errorf("mid-download: choking_us = %v", got)
	}
	if got := value(t, mid, "shoal_torrent_have_bytes", ih); got <= 0 || got >= float64(len(s.data)) {
		t.Errorf("mid-download: have %v of %d", got, len(s.data))
	}

	d.waitFor(t, h, "100%", 60*time.Second, func(v tview) bool { return v.Progress == 1 })
	time.Sleep(1100 * time.Millisecond) // one supervision tick folds the counters
	types, end := scrape(t, d)
	size := float64(len(s.data))
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"shoal_torrents", nil, 1, 1},
		{"shoal_torrent_info", map[string]string{"infohash": h, "state": "seeding", "name": s.name}, 1, 1},
		{"shoal_torrents_active", nil, 1, 1},
		{"shoal_downloaded_bytes_total", nil, size, size * 1.1},
		{"shoal_uploaded_bytes_total", nil, 0, 0},
		{"shoal_torrent_size_bytes", ih, size, size},
		{"shoal_torrent_have_bytes", ih, size, size},
		{"shoal_torrent_downloaded_bytes_total", ih, size, size * 1.1},
		{"shoal_torrent_uploaded_bytes_total", ih, 0, 0},
		{"shoal_torrent_hash_failures_total", ih, 0, 0},
		{"shoal_torrent_seeds", ih, 0, 1},
		{"shoal_torrent_peer_choke_states", map[string]string{"infohash": h, "state": "unchoked_by_us"}, 0, 1},
	} {
		if got := value(t, end, c.name, c.labels); got < c.min || got > c.max {
			t.Errorf("after download: %s%v = %v, want %v..%v", c.name, c.labels, got, c.min, c.max)
		}
	}
	if v := value(t, end, "shoal_torrent_have_bytes", ih); v != size {
		t.Errorf("have %v", v)
	}
	// Tracker figures: the daemon announced to the swarm's tracker, which
	// answered (the seeder was there), and failed never.
	if got := value(t, end, "shoal_torrent_tracker_announces_total", ih); got < 1 {
		t.Errorf("tracker announces %v, want >= 1", got)
	}
	if got := value(t, end, "shoal_torrent_tracker_failures_total", ih); got != 0 {
		t.Errorf("tracker failures %v", got)
	}
	if got := value(t, end, "shoal_torrent_tracker_seeders", ih); got < 1 || got > 2 {
		t.Errorf("tracker seeders %v, want 1 or 2 (the seeder, and us once complete)", got)
	}
	if got := value(t, end, "shoal_torrent_tracker_last_announce_timestamp_seconds", ih); got < float64(time.Now().Add(-2*time.Minute).Unix()) {
		t.Errorf("last announce at %v", got)
	}
	if got := value(t, mid, "shoal_torrent_tracker_peers", ih); got < 1 {
		t.Errorf("mid-download: the tracker's answer listed %v peers, want the seeder", got)
	}
	if got := value(t, end, "shoal_torrent_peers_peak", ih); got < 1 {
		t.Errorf("peak peers %v", got)
	}
	if got := value(t, end, "shoal_torrent_left_bytes", ih); got != 0 {
		t.Errorf("left %v", got)
	}
	if got := value(t, end, "shoal_torrent_wanted_bytes", ih); got != size {
		t.Errorf("wanted bytes %v, want %v", got, size)
	}
	for name, typ := range map[string]string{"shoal_torrent_tracker_announces_total": "counter", "shoal_torrent_tracker_seeders": "gauge", "shoal_downloaded_bytes_total": "counter", "shoal_torrent_hash_failures_total": "counter", "shoal_torrent_peers": "gauge"} {
		if types[name] != typ {
			t.Errorf("%s has TYPE %q, want %s", name, types[name], typ)
		}
	}
	// Label values are escaped: a torrent whose name needs it.
	odd := filepath.Join(t.TempDir(), "odd")
	os.MkdirAll(odd, 0o755)
	weird := smallTorrentNamed(t, odd, `say "hi" ü`)
	if code, body := d.do("POST", "/api/torrents", map[string]any{"torrent": weird, "paused": true}); code != 201 {
		t.Fatalf("add odd name: %d %s", code, body)
	}
	_, s2 := scrape(t, d)
	if value(t, s2, "shoal_torrents", nil) != 2 {
		t.Error("the second torrent is not counted")
	}
	found := false
	for _, x := range s2 {
		found = found || (x.name == "shoal_torrent_info" && x.labels["name"] == `say "hi" ü` && x.labels["state"] == "stopped")
	}
	if !found {
		t.Error("a name with quotes does not round-trip through the labels")
	}
}
