package webui

import (
	"embed"
	"fmt"
	"net/http"
	"strings"

	"github.com/shoal-p2p/shoal/internal/daemon"
)

//go:embed static
var staticFS embed.FS

// metrics writes Prometheus text format (version 0.0.4): global and
// per-torrent bytes, rates, peers, choke states and hash failures, and the
// DHT node's figures when Config.DHT is set.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	list := s.cfg.Backend.List()
	t := s.cfg.Backend.Totals()
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("shoal_torrents", "gauge", "Torrents in the daemon.")
	fmt.Fprintf(&b, "shoal_torrents %d\n", t.Torrents)
	metric("shoal_torrents_active", "gauge", "Torrents running (checking, downloading or seeding).")
	fmt.Fprintf(&b, "shoal_torrents_active %d\n", t.Active)
	metric("shoal_download_bytes_per_second", "gauge", "Download rate of all torrents.")
	fmt.Fprintf(&b, "shoal_download_bytes_per_second %g\n", t.DownRate)
	metric("shoal_upload_bytes_per_second", "gauge", "Upload rate of all torrents.")
	fmt.Fprintf(&b, "shoal_upload_bytes_per_second %g\n", t.UpRate)
	metric("shoal_downloaded_bytes_total", "counter", "Payload bytes downloaded by the torrents present, over all runs.")
	fmt.Fprintf(&b, "shoal_downloaded_bytes_total %d\n", t.Downloaded)
	metric("shoal_uploaded_bytes_total", "counter", "Payload bytes uploaded by the torrents present, over all runs.")
	fmt.Fprintf(&b, "shoal_uploaded_bytes_total %d\n", t.Uploaded)

	if s.cfg.DHT != nil {
		d := s.cfg.DHT()
		metric("shoal_dht_nodes", "gauge", "Nodes in the DHT routing table.")
		fmt.Fprintf(&b, "shoal_dht_nodes %d\n", d.Nodes)
		metric("shoal_dht_queries_total", "counter", "DHT queries by direction (in: answered for others, out: sent).")
		fmt.Fprintf(&b, "shoal_dht_queries_total{direction=\"in\"} %d\nshoal_dht_queries_total{direction=\"out\"} %d\n", d.QueriesIn, d.QueriesOut)
		metric("shoal_dht_timeouts_total", "counter", "DHT queries that got no answer.")
		fmt.Fprintf(&b, "shoal_dht_timeouts_total %d\n", d.Timeouts)
		metric("shoal_dht_dropped_total", "counter", "DHT packets dropped, by reason.")
		fmt.Fprintf(&b, "shoal_dht_dropped_total{reason=\"rate_limited\"} %d\nshoal_dht_dropped_total{reason=\"bad_packet\"} %d\n", d.RateLimited, d.BadPackets)
	}

	if s.cfg.Punch != nil {
		p := s.cfg.Punch()
		metric("shoal_holepunch_total", "counter", "Hole-punch upgrades of relayed connections, by outcome (attempt, success, fallback to the relay).")
		fmt.Fprintf(&b, "shoal_holepunch_total{outcome=\"attempt\"} %d\nshoal_holepunch_total{outcome=\"success\"} %d\nshoal_holepunch_total{outcome=\"fallback\"} %d\n", p.Attempts, p.Successes, p.Fallbacks)
		metric("shoal_holepunch_direct_total", "counter", "Punched direct connections handed to torrents.")
		fmt.Fprintf(&b, "shoal_holepunch_direct_total %d\n", p.Direct)
		metric("shoal_ut_holepunch_total", "counter", "BEP 55 ut_holepunch, by event: rendezvous we asked for, pairs of peers we introduced, connects we acted on, and their successes and failures (failures include refused rendezvous).")
		fmt.Fprintf(&b, "shoal_ut_holepunch_total{event=\"request\"} %d\nshoal_ut_holepunch_total{event=\"relayed\"} %d\nshoal_ut_holepunch_total{event=\"attempt\"} %d\nshoal_ut_holepunch_total{event=\"success\"} %d\nshoal_ut_holepunch_total{event=\"fallback\"} %d\n",
			p.HPRequests, p.HPRelayed, p.HPAttempts, p.HPSuccesses, p.HPFallbacks)
	}

	per := []struct {
		name, typ, help string
		val             func(v int) string
	}{
		{"shoal_torrent_size_bytes", "gauge", "Total size.", func(i int) string { return fmt.Sprint(list[i].Size) }},
		{"shoal_torrent_have_bytes", "gauge", "Verified bytes.", func(i int) string { return fmt.Sprint(list[i].Have) }},
		{"shoal_torrent_downloaded_bytes_total", "counter", "Payload bytes downloaded.", func(i int) string { return fmt.Sprint(list[i].Downloaded) }},
		{"shoal_torrent_uploaded_bytes_total", "counter", "Payload bytes uploaded.", func(i int) string { return fmt.Sprint(list[i].Uploaded) }},
		{"shoal_torrent_download_bytes_per_second", "gauge", "Download rate.", func(i int) string { return fmt.Sprint(list[i].DownRate) }},
		{"shoal_torrent_upload_bytes_per_second", "gauge", "Upload rate.", func(i int) string { return fmt.Sprint(list[i].UpRate) }},
		{"shoal_torrent_peers", "gauge", "Connected peers.", func(i int) string { return fmt.Sprint(list[i].Peers) }},
		{"shoal_torrent_seeds", "gauge", "Connected peers that have everything.", func(i int) string { return fmt.Sprint(list[i].Seeds) }},
		{"shoal_torrent_hash_failures_total", "counter", "Pieces that failed their hash check.", func(i int) string { return fmt.Sprint(list[i].HashFails) }},
		{"shoal_torrent_wanted_bytes", "gauge", "Bytes of the wanted pieces (Transmission's sizeWhenDone).", func(i int) string { return fmt.Sprint(list[i].SizeWhenDone) }},
		{"shoal_torrent_left_bytes", "gauge", "Wanted bytes still missing (leftUntilDone).", func(i int) string { return fmt.Sprint(list[i].Left) }},
		{"shoal_torrent_peers_peak", "gauge", "Most peers connected at once in this run.", func(i int) string { return fmt.Sprint(list[i].PeakPeers) }},
		{"shoal_torrent_webseed_bytes_total", "counter", "Payload bytes from web seeds in this run.", func(i int) string { return fmt.Sprint(list[i].WebseedBytes) }},
		{"shoal_torrent_tracker_announces_total", "counter", "Tracker announces answered (all trackers, this run).", func(i int) string { return fmt.Sprint(list[i].Tracker.Announces) }},
		{"shoal_torrent_tracker_failures_total", "counter", "Tracker announces that failed (this run).", func(i int) string { return fmt.Sprint(list[i].Tracker.Failures) }},
		{"shoal_torrent_tracker_peers", "gauge", "Peers in the last tracker answer.", func(i int) string { return fmt.Sprint(list[i].Tracker.Peers) }},
	}
	// The state is not a label of the figures (a series must not change
	// identity when a torrent finishes); it has its own info series.
	metric("shoal_torrent_info", "gauge", "Always 1; labels give each torrent's name and state.")
	for _, v := range list {
		fmt.Fprintf(&b, "shoal_torrent_info{infohash=\"%s\",name=\"%s\",state=\"%s\"} 1\n", v.Hash, promEscape(v.Name), v.State)
	}
	for _, p := range per {
		metric(p.name, p.typ, p.help)
		for i, v := range list {
			fmt.Fprintf(&b, "%s{infohash=\"%s\",name=\"%s\"} %s\n", p.name, v.Hash, promEscape(v.Name), p.val(i))
		}
	}
	// Swarm sizes the trackers reported; absent until a tracker said.
	for _, sw := range []struct {
		name, help string
		val        func(daemon.TrackerView) int
	}{
		{"shoal_torrent_tracker_seeders", "Seeders in the last tracker answer that gave them.", func(t daemon.TrackerView) int { return t.Seeders }},
		{"shoal_torrent_tracker_leechers", "Leechers in the last tracker answer that gave them.", func(t daemon.TrackerView) int { return t.Leechers }},
	} {
		metric(sw.name, "gauge", sw.help)
		for _, v := range list {
			if n := sw.val(v.Tracker); n >= 0 && !v.Tracker.LastAt.IsZero() && v.Tracker.Announces > 0 {
				fmt.Fprintf(&b, "%s{infohash=\"%s\",name=\"%s\"} %d\n", sw.name, v.Hash, promEscape(v.Name), n)
			}
		}
	}
	metric("shoal_torrent_tracker_last_announce_timestamp_seconds", "gauge", "Unix time of the last announce attempt.")
	for _, v := range list {
		if !v.Tracker.LastAt.IsZero() {
			fmt.Fprintf(&b, "shoal_torrent_tracker_last_announce_timestamp_seconds{infohash=\"%s\",name=\"%s\"} %d\n", v.Hash, promEscape(v.Name), v.Tracker.LastAt.Unix())
		}
	}
	// Choke states from the live peer lists.
	metric("shoal_torrent_peer_choke_states", "gauge", "Peers by choke state: unchoked_by_us, choked_by_us, unchoking_us, choking_us.")
	for _, v := range list {
		peers, _, err := s.cfg.Backend.Swarm(v.Hash)
		if err != nil {
			continue
		}
		var ubu, cbu, uus, cus int
		for _, p := range peers {
			if p.AmChoking {
				cbu++
			} else {
				ubu++
			}
			if p.PeerChoking {
				cus++
			} else {
				uus++
			}
		}
		for _, kv := range []struct {
			k string
			n int
		}{{"unchoked_by_us", ubu}, {"choked_by_us", cbu}, {"unchoking_us", uus}, {"choking_us", cus}} {
			fmt.Fprintf(&b, "shoal_torrent_peer_choke_states{infohash=\"%s\",state=\"%s\"} %d\n", v.Hash, kv.k, kv.n)
		}
	}
	w.Write([]byte(b.String()))
}

// promEscape escapes a label value for the text format (\\, \" and \n).
func promEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
