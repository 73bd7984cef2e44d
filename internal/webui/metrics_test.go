package webui

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/daemon"
	"github.com/shoal-p2p/shoal/internal/session"
)

// fakeBackend answers the calls /metrics makes; any other call panics
// (the embedded nil interface).
type fakeBackend struct {
	Backend
	list []daemon.View
}

func (f fakeBackend) List() []daemon.View { return f.list }
func (f fakeBackend) Totals() daemon.Totals {
	return daemon.Totals{Torrents: len(f.list), Active: 1, Downloaded: 300, Uploaded: 7}
}
func (f fakeBackend) Swarm(string) ([]session.PeerInfo, []session.ChokeRound, error) {
	return []session.PeerInfo{{AmChoking: false, PeerChoking: true}, {AmChoking: true, PeerChoking: true}}, nil, nil
}

func TestMetricsText(t *testing.T) {
	for _, withDHT := range []bool{false, true} {
		cfg := Config{Backend: fakeBackend{list: []daemon.View{{
			Hash: "aa", Name: "a \"b\"\nc\\", State: "seeding", Size: 100, Have: 100, Downloaded: 300, Uploaded: 7, Peers: 2, HashFails: 3,
			Tracker: daemon.TrackerView{Announces: 4, Failures: 1, Peers: 5, Seeders: 3, Leechers: -1, LastAt: time.Unix(1_700_000_000, 0)},
		}}}}
		if withDHT {
			cfg.DHT = func() DHTStats {
				return DHTStats{Nodes: 42, QueriesIn: 5, QueriesOut: 6, Timeouts: 1, RateLimited: 2, BadPackets: 3}
			}
			cfg.Punch = func() PunchStats {
				return PunchStats{Attempts: 3, Successes: 2, Fallbacks: 1, Direct: 2, HPRelayed: 5, HPSuccesses: 4}
			}
		}
		s := New(cfg)
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Host = "127.0.0.1"
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		body, _ := io.ReadAll(w.Result().Body)
		text := string(body)
		want := []string{
			"# TYPE shoal_torrents gauge\nshoal_torrents 1\n",
			"shoal_downloaded_bytes_total 300\n",
			`shoal_torrent_info{infohash="aa",name="a \"b\"\nc\\",state="seeding"} 1` + "\n",
			`shoal_torrent_hash_failures_total{infohash="aa",name="a \"b\"\nc\\"} 3` + "\n",
			`shoal_torrent_peers{infohash="aa",name="a \"b\"\nc\\"} 2` + "\n",
			`shoal_torrent_peer_choke_states{infohash="aa",state="unchoked_by_us"} 1` + "\n",
			`shoal_torrent_peer_choke_states{infohash="aa",state="choking_us"} 2` + "\n",
			`shoal_torrent_tracker_announces_total{infohash="aa",name="a \"b\"\nc\\"} 4` + "\n",
			`shoal_torrent_tracker_failures_total{infohash="aa",name="a \"b\"\nc\\"} 1` + "\n",
			`shoal_torrent_tracker_seeders{infohash="aa",name="a \"b\"\nc\\"} 3` + "\n",
			`shoal_torrent_tracker_last_announce_timestamp_seconds{infohash="aa",name="a \"b\"\nc\\"} 1700000000` + "\n",
		}
		dht := []string{`shoal_holepunch_total{outcome="success"} 2` + "\n", "shoal_holepunch_direct_total 2\n",
			`shoal_ut_holepunch_total{event="relayed"} 5` + "\n", `shoal_ut_holepunch_total{event="success"} 4` + "\n", "shoal_dht_nodes 42\n", `shoal_dht_queries_total{direction="out"} 6` + "\n", `shoal_dht_dropped_total{reason="bad_packet"} 3` + "\n"}
		if withDHT {
			want = append(want, dht...)
		}
		for _, x := range want {
			if !strings.Contains(text, x) {
				t.Errorf("dht=%v: /metrics lacks %q:\n%s", withDHT, x, text)
			}
		}
		if strings.Contains(text, "shoal_torrent_tracker_leechers{") {
			t.Errorf("a leecher count the tracker did not give:\n%s", text)
		}
		if !withDHT && strings.Contains(text, "shoal_dht") {
			t.Errorf("DHT figures without a DHT:\n%s", text)
		}
	}
}
