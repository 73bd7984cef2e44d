package session

import (
	"bytes"
	"context"
	"net"
	"slices"

	"github.com/shoal-p2p/shoal/internal/relay"
	"github.com/shoal-p2p/shoal/internal/tracker"
)

// ServeRelayed treats a connection spliced by a relay like an accepted one:
// it reads the outside peer's handshake and hands it to the torrent.
func (c *Client) ServeRelayed(ctx context.Context, nc net.Conn) { c.handleIncoming(ctx, nc) }

// UseRelays keeps control connections to the relays at addrs (HOST:PORT of
// their main ports) until ctx ends. Each relay gives us a public port,
// announces it to our torrents' trackers on our behalf and splices the
// connections made to it to us. Unless behindNAT, a relay first tries to
// connect to our listen port, and when that works we do not use it.
// The returned relay.Client reports the public addresses (Addrs).
func (c *Client) UseRelays(ctx context.Context, addrs []string, behindNAT bool) (*relay.Client, error) {
	return c.useRelays(ctx, addrs, behindNAT, nil)
}

// useRelays is UseRelays; with onGiveUp set, a relay that has not worked
// for Config.RelayGiveUp is dropped and passed to onGiveUp.
func (c *Client) useRelays(ctx context.Context, addrs []string, behindNAT bool, onGiveUp func(string)) (*relay.Client, error) {
	cfg := relay.ClientConfig{
		Relays: addrs, PeerID: c.peerID, ListenPort: c.port, BehindNAT: behindNAT,
		Torrents: c.relayTorrents,
		OnConn: func(nc net.Conn) {
			c.puncher().markRelayed(nc.RemoteAddr())
			c.handleIncoming(ctx, nc)
		},
		Logger: c.log.With("room", "relay"),
	}
	if onGiveUp != nil {
		cfg.GiveUpAfter, cfg.OnGiveUp = c.cfg.RelayGiveUp, onGiveUp
		if cfg.GiveUpAfter <= 0 {
			cfg.GiveUpAfter = relay.FoundRelayGiveUp
		}
	}
	rc, err := relay.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	go rc.Run(ctx)
	return rc, nil
}

// relayTorrents lists our torrents for the relays: info-hash, bytes left
// and up to relay.MaxTrackers announce URLs (none for NoTrackers torrents).
func (c *Client) relayTorrents() []relay.Torrent {
	c.mu.Lock()
	ts := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	out := make([]relay.Torrent, 0, len(ts))
	for _, t := range ts {
		rt := relay.Torrent{InfoHash: t.infoHash, Left: t.left.Load(), Private: t.info.Private}
		if !t.opts.NoTrackers && t.mi != nil {
			rt.Trackers = relayTrackerURLs(t.mi.Announce, t.mi.AnnounceList)
		}
		out = append(out, rt)
	}
	// a stable order, so that an unchanged set compares equal
	slices.SortFunc(out, func(a, b relay.Torrent) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) })
	return out
}

// relayTrackerURLs flattens the tiers into at most relay.MaxTrackers
// supported URLs, without duplicates.
func relayTrackerURLs(announce string, list [][]string) []string {
	var urls []string
	seen := map[string]bool{}
	add := func(u string) {
		if len(urls) < relay.MaxTrackers && !seen[u] && len(u) <= relay.MaxURLLen && tracker.Supported(u) {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	for _, tier := range list {
		for _, u := range tier {
			add(u)
		}
	}
	add(announce)
	return urls
}
