package session

import (
	"context"

	"github.com/shoal-p2p/shoal/internal/relay"
)

// RelayDirectoryTrackers lists the trackers to look for relays at: those of
// our public torrents (a private torrent's tracker is never told about
// anything but that torrent), without duplicates, at most
// relay.MaxLookupTrackers.
func (c *Client) RelayDirectoryTrackers() []string {
	c.mu.Lock()
	ts := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, t := range ts {
		if t.opts.NoTrackers || t.mi == nil || t.info == nil || t.info.Private {
			continue
		}
		for _, u := range relayTrackerURLs(t.mi.Announce, t.mi.AnnounceList) {
			if len(out) < relay.MaxLookupTrackers && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// FindRelays uses the relays at manual (HOST:PORT, may be empty) at once, and
// looks in the relay directory (our public torrents' trackers and, when
// attached, the DHT) for up to want more (0 = relay.DefaultMaxRelays),
// looking again every relay.RelookupInterval while it has fewer; every
// relay found is used like one given by hand (UseRelays), except that one
// that stops working for Config.RelayGiveUp is dropped and replaced by
// another from the directory, for as long as ctx lives. notify receives
// one-line messages for the user (relay found, none found); nil = logged.
// Only an error with the manual relays is returned; the lookup runs on a
// goroutine that ends with ctx.
func (c *Client) FindRelays(ctx context.Context, manual []string, want int, behindNAT bool, notify func(string)) error {
	if len(manual) > 0 {
		if _, err := c.UseRelays(ctx, manual, behindNAT); err != nil {
			return err
		}
	}
	cfg := relay.FinderConfig{
		Trackers: c.RelayDirectoryTrackers, Tracker: c.cfg.Tracker, Port: c.port,
		Max: want, Exclude: manual, Notify: notify, Logger: c.log.With("room", "relayfind"),
	}
	if c.cfg.DHT != nil {
		cfg.DHT = c.cfg.DHT
	}
	lost := make(chan string)
	cfg.Lost = lost
	giveUp := func(addr string) {
		select {
		case lost <- addr:
		case <-ctx.Done():
		}
	}
	go relay.FindRelays(ctx, cfg, func(found []relay.Found) {
		addrs := make([]string, len(found))
		for i, f := range found {
			addrs[i] = f.Addr.String()
		}
		if _, err := c.useRelays(ctx, addrs, behindNAT, giveUp); err != nil {
			c.log.Warn("using found relays", "relays", addrs, "err", err)
		}
	})
	return nil
}
