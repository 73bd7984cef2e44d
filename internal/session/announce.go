package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
)

const (
	minAnnounceWait = 30 * time.Second
	maxRetryWait    = 5 * time.Minute
)

// announceLoop talks to the torrent's trackers (BEP 12 tiers) and feeds the
// peers they return to the owner loop. It sends "completed" as soon as the
// download finishes and "stopped" on the way out.
func (t *Torrent) announceLoop(ctx context.Context) {
	tiers := tracker.NewTiers(t.mi.Announce, t.mi.AnnounceList, rand.New(rand.NewPCG(t.rng.Uint64(), 1)))
	if len(tiers.URLs()) == 0 {
		return
	}
	var key [4]byte
	copy(key[:], t.c.peerID[16:])
	req := tracker.AnnounceRequest{
		InfoHash: t.infoHash, PeerID: t.c.peerID, Port: t.c.port, NumWant: 200,
		Key: uint32(key[0])<<24 | uint32(key[1])<<16 | uint32(key[2])<<8 | uint32(key[3]), IP: t.c.cfg.AnnounceIP,
	}
	event := tracker.Started
	retry := 15 * time.Second
	completedSent := t.left.Load() == 0 // a torrent that starts complete never sends "completed"
	for {
		req.Event = event
		req.Uploaded, req.Downloaded, req.Left = t.uploaded.Load(), t.downloaded.Load(), t.left.Load()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, url, err := tiers.Announce(actx, t.c.cfg.Tracker, req)
		cancel()
		wait := retry
		t.recordAnnounce(url, resp, err)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			t.log.Warn("announce failed", "err", err)
			retry = min(retry*2, maxRetryWait)
		} else {
			retry = 15 * time.Second
			event = tracker.None
			wait = max(resp.Interval, minAnnounceWait)
			if resp.MinInterval > wait {
				wait = resp.MinInterval
			}
			t.log.Debug("announced", "tracker", url, "peers", len(resp.Peers), "next", wait)
			if len(resp.Peers) > 0 {
				select {
				case t.addrs <- resp.Peers:
				case <-ctx.Done():
				}
			}
		}
		timer := time.NewTimer(wait)
		completed := t.completed
		if completedSent {
			completed = nil
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			t.announceStopped(tiers, req)
			return
		case <-completed:
			event = tracker.Completed
			completedSent = true
		case <-timer.C:
		}
		timer.Stop()
	}
	t.announceStopped(tiers, req)
}

// announceStopped tells the tracker we are leaving, briefly: shutdown must not hang on it.
func (t *Torrent) announceStopped(tiers *tracker.Tiers, req tracker.AnnounceRequest) {
	req.Event = tracker.Stopped
	req.Uploaded, req.Downloaded, req.Left = t.uploaded.Load(), t.downloaded.Load(), t.left.Load()
	req.NumWant = 0
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, _, err := tiers.Announce(ctx, t.c.cfg.Tracker, req); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.log.Debug("stopped announce", "err", err)
	}
}

// TrackerStats is what the announcer knows of the torrent's trackers.
type TrackerStats struct {
	Announces, Failures int       // over all trackers
	LastURL             string    // the tracker that answered last (passkeys stripped by the tracker client's errors only)
	LastPeers           int       // peers in the last answer
	LastSeeders         int       // -1 if the tracker did not say
	LastLeechers        int       // -1 if the tracker did not say
	LastError           string    // the last failure, "" after a success
	LastAt              time.Time // time of the last attempt
}

// recordAnnounce updates the tracker figures (called by the announcer).
func (t *Torrent) recordAnnounce(url string, resp *tracker.AnnounceResponse, err error) {
	t.trackMu.Lock()
	defer t.trackMu.Unlock()
	s := &t.trackStats
	s.LastAt = time.Now()
	if err != nil {
		s.Failures++
		s.LastError = err.Error()
		return
	}
	s.Announces++
	s.LastURL, s.LastError = url, ""
	s.LastPeers, s.LastSeeders, s.LastLeechers = len(resp.Peers), resp.Seeders, resp.Leechers
}

// TrackerStats returns the tracker figures so far.
func (t *Torrent) TrackerStats() TrackerStats {
	t.trackMu.Lock()
	defer t.trackMu.Unlock()
	return t.trackStats
}
