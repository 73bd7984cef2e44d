package webui

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/shoal-p2p/shoal/internal/daemon"
)

// torrentSet applies torrent-set. File lists (files-wanted, files-unwanted,
// priority-high, priority-normal, priority-low) name files by their place in
// torrent-get's "files" (padding files are not listed, so that place is
// mapped back to the torrent's own file index); an empty list means every
// file, as in Transmission. priority-low is stored and read back but fetched
// as normal (the engine has two levels). Speed limits are in kB/s
// (1,000 bytes), and take effect at once.
func (s *Server) torrentSet(a map[string]any) error {
	hashes, err := s.resolveIDs(a["ids"])
	if err != nil {
		return err
	}
	type fileList struct {
		key string
		idx []int
		all bool
	}
	var lists []fileList
	for _, key := range []string{"files-wanted", "files-unwanted", "priority-high", "priority-low", "priority-normal"} {
		raw, ok := a[key]
		if !ok {
			continue
		}
		l, ok := raw.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list of file numbers", key)
		}
		if len(l) > 1<<20 {
			return fmt.Errorf("%s: too many files", key)
		}
		fl := fileList{key: key, all: len(l) == 0}
		for _, x := range l {
			i, ok := asInt(x)
			if !ok || i < 0 {
				return fmt.Errorf("%s: bad file number %v", key, x)
			}
			fl.idx = append(fl.idx, int(i))
		}
		lists = append(lists, fl)
	}
	var c daemon.Changes
	limit := func(valKey, onKey string) *int64 {
		v, hasV := asInt(a[valKey])
		on, hasOn := a[onKey]
		var r int64
		switch {
		case hasOn && !asBool(on):
			return &r
		case hasV:
			r = v * kB
			return &r
		}
		return nil
	}
	c.DownLimit = limit("downloadLimit", "downloadLimited")
	c.UpLimit = limit("uploadLimit", "uploadLimited")
	if m, ok := asInt(a["seedRatioMode"]); ok {
		var r float64
		switch m {
		case 1:
			r, _ = asFloat(a["seedRatioLimit"])
		case 2:
			r = -1
		}
		c.SeedRatio = &r
	} else if r, ok := asFloat(a["seedRatioLimit"]); ok {
		c.SeedRatio = &r
	}
	if m, ok := asInt(a["seedIdleMode"]); ok {
		var l int64
		switch m {
		case 1:
			l, _ = asInt(a["seedIdleLimit"])
			l *= 60
		case 2:
			l = -1
		}
		c.SeedLimit = &l
	}
	t, f := true, false
	hi, lo, norm := 1, -1, 0
	var errs []error
	for _, h := range hashes {
		ch := c
		if len(lists) > 0 {
			d, err := s.cfg.Backend.Get(h)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", h, err))
				continue
			}
			var bad error
			for _, fl := range lists {
				idx := fl.idx
				if fl.all {
					idx = make([]int, len(d.Files))
					for i := range idx {
						idx[i] = i
					}
				}
				for _, i := range idx {
					if i >= len(d.Files) {
						bad = fmt.Errorf("%s: no file %d (the torrent has %d)", fl.key, i, len(d.Files))
						break
					}
					fc := daemon.FileChange{Index: d.Files[i].Index}
					switch fl.key {
					case "files-wanted":
						fc.Wanted = &t
					case "files-unwanted":
						fc.Wanted = &f
					case "priority-high":
						fc.Priority = &hi
					case "priority-low":
						fc.Priority = &lo
					case "priority-normal":
						fc.Priority = &norm
					}
					ch.Files = append(ch.Files, fc)
				}
			}
			if bad != nil {
				errs = append(errs, fmt.Errorf("%s: %w", h, bad))
				continue
			}
		}
		if err := s.cfg.Backend.Set(h, ch); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
		}
	}
	return errors.Join(errs...)
}

// trackerStats gives Transmission's trackerStats. The engine keeps one set
// of figures for all of a torrent's trackers: the answer and counts go to
// the tracker that answered last (the first one before any answer), the
// others show their URL and host only.
func trackerStats(urls []string, tv daemon.TrackerView) []map[string]any {
	out := []map[string]any{}
	at := -1
	for i, u := range urls {
		if u == tv.LastURL {
			at = i
		}
	}
	if at < 0 && len(urls) > 0 {
		at = 0
	}
	for i, u := range urls {
		st := map[string]any{
			"id": i, "tier": i, "announce": u, "scrape": "", "host": hostOf(u), "isBackup": false,
			"announceState": 1, "scrapeState": 0, "hasAnnounced": false, "hasScraped": false,
			"lastAnnounceResult": "", "lastAnnouncePeerCount": 0, "lastAnnounceSucceeded": false,
			"lastAnnounceTime": 0, "lastAnnounceStartTime": 0, "lastAnnounceTimedOut": false,
			"seederCount": -1, "leecherCount": -1, "downloadCount": -1, "nextAnnounceTime": 0,
			"lastScrapeResult": "", "lastScrapeSucceeded": false, "lastScrapeTime": 0, "lastScrapeStartTime": 0,
			"lastScrapeTimedOut": false, "nextScrapeTime": 0, "announceCount": 0, "failureCount": 0,
		}
		if i == at && !tv.LastAt.IsZero() {
			ok := tv.LastError == ""
			result := "Success"
			if !ok {
				result = tv.LastError
			}
			st["hasAnnounced"] = true
			st["lastAnnounceResult"] = result
			st["lastAnnounceSucceeded"] = ok
			st["lastAnnounceTime"] = tv.LastAt.Unix()
			st["lastAnnounceStartTime"] = tv.LastAt.Unix()
			st["lastAnnouncePeerCount"] = tv.Peers
			st["seederCount"], st["leecherCount"] = tv.Seeders, tv.Leechers
			st["announceCount"], st["failureCount"] = tv.Announces, tv.Failures
		}
		out = append(out, st)
	}
	return out
}

// hostOf is Transmission's "host": scheme://host:port of a tracker URL.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	port := p.Port()
	if port == "" {
		switch p.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	if port == "" {
		return p.Scheme + "://" + p.Host
	}
	return p.Scheme + "://" + net.JoinHostPort(p.Hostname(), port)
}
