package relay

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Announcing into the DHT. A relay that runs a DHT node (Config.DHT) lists
// itself under DirectoryHash with its main port, and every torrent of every
// relayed peer with that peer's public port on the relay (announce_peer with
// an explicit port, never implied_port: the DHT socket's port is not the
// peer's). DHT nodes record the address the announce came from, so the
// relay's DHT socket must share the public address of its TCP ports.
// Announces repeat every DirectoryDHTInterval, and at most dhtAnnouncesAtOnce
// run at once, so a relay full of peers does not flood the DHT.
const (
	dhtAnnounceTimeout = 60 * time.Second // one iterative lookup plus the announce_peer queries
	dhtRetryMin        = 5 * time.Second  // first retry after a failed announce (the node may still be joining); doubles up to DirectoryDHTInterval
	dhtAnnouncesAtOnce = 4
)

// dhtAnnounceLoop announces port under ih into s.cfg.DHT until ctx ends:
// now, then every DirectoryDHTInterval (sooner, with backoff, after a
// failure).
func (s *Server) dhtAnnounceLoop(ctx context.Context, ih [20]byte, port uint16, log *slog.Logger) {
	retry := dhtRetryMin
	announced := false
	for {
		select {
		case s.dhtSem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		actx, cancel := context.WithTimeout(ctx, dhtAnnounceTimeout)
		_, err := s.cfg.DHT.Announce(actx, ih, int(port), false)
		cancel()
		<-s.dhtSem
		if ctx.Err() != nil {
			return
		}
		wait := DirectoryDHTInterval
		if err != nil {
			log.Debug("relay: dht announce failed", "infohash", hex.EncodeToString(ih[:]), "port", port, "err", err, "retry in", retry)
			wait = retry
			retry = min(retry*2, DirectoryDHTInterval)
		} else {
			if !announced {
				log.Info("relay: announced in the DHT", "infohash", hex.EncodeToString(ih[:]), "port", port)
			}
			announced = true
			retry = dhtRetryMin
			wait -= rand.N(wait / 8) // spread re-announces of torrents added together
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
