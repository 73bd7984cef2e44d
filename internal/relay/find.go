package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/tracker"
)

// FinderConfig configures the NATed side's lookup of relays in the relay
// directory (see directory.go).
type FinderConfig struct {
	// Trackers returns the tracker URLs to look in: the trackers of the
	// peer's public torrents (never a private torrent's). Called at every
	// lookup, so a daemon's new torrents count; nil = none.
	Trackers func() []string
	// DHT, when set, is looked in with get_peers(DirectoryHash).
	DHT DHT
	// Tracker is the tracker client; nil = a default one.
	Tracker *tracker.Client
	// Port is our listen port, sent in lookup announces (trackers want one).
	Port uint16
	// Max is how many relays to find; 0 = DefaultMaxRelays.
	Max int
	// Exclude lists relays already in use (HOST:PORT); they are not found
	// again.
	Exclude []string
	// Timeout bounds one lookup (0 = LookupTimeout), TrackerTimeout one
	// tracker announce of it (0 = LookupTrackerTimeout), and Interval is
	// the wait between lookups while relays are missing (0 = RelookupInterval).
	Timeout, TrackerTimeout, Interval time.Duration
	// Lost, when set, receives relays that FindRelays handed out and that
	// have stopped working (see ClientConfig.GiveUpAfter), as the HOST:PORT
	// of Found.Addr: FindRelays then counts them out and looks for others,
	// and keeps running until ctx ends. Without it, FindRelays returns once
	// it has found Max relays.
	Lost <-chan string
	// Notify receives one-line messages meant for the user (relay found,
	// none found); nil = they are logged at Info.
	Notify func(msg string)
	Logger *slog.Logger // nil = discard

	// probe checks a candidate (tests replace it); nil = Probe.
	probe func(context.Context, netip.AddrPort) error
}

// Found is a relay found in the directory, answering the probe.
type Found struct {
	Addr netip.AddrPort // the relay's main port
	Via  string         // where it was listed: "tracker URL" (query removed) or "DHT"
}

func (cfg *FinderConfig) defaults() {
	if cfg.Max <= 0 {
		cfg.Max = DefaultMaxRelays
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = LookupTimeout
	}
	if cfg.TrackerTimeout <= 0 {
		cfg.TrackerTimeout = LookupTrackerTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = RelookupInterval
	}
	if cfg.Tracker == nil {
		cfg.Tracker = &tracker.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.probe == nil {
		cfg.probe = Probe
	}
	if cfg.Notify == nil {
		log := cfg.Logger
		cfg.Notify = func(msg string) { log.Info(msg) }
	}
}

// lookupTrackers returns the deduplicated, supported URLs of cfg.Trackers,
// at most MaxLookupTrackers.
func (cfg *FinderConfig) lookupTrackers() []string {
	if cfg.Trackers == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, u := range cfg.Trackers() {
		if len(out) == MaxLookupTrackers {
			break
		}
		if !seen[u] && tracker.Supported(u) {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// Lookup looks in the relay directory once: it asks the trackers (at most
// MaxLookupTrackers) and the DHT in parallel, takes at most
// MaxFoundPerResponse addresses from each answer, probes them and returns
// up to cfg.Max relays that answered, in the order they did. It is bounded
// by cfg.Timeout. The error says why nothing was found when the result is
// empty.
func Lookup(ctx context.Context, cfg FinderConfig) ([]Found, error) {
	cfg.defaults()
	trackers := cfg.lookupTrackers()
	if len(trackers) == 0 && cfg.DHT == nil {
		return nil, errNoSources
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	exclude := map[string]bool{}
	for _, e := range cfg.Exclude {
		exclude[e] = true
		if ap, err := netip.ParseAddrPort(e); err == nil {
			exclude[unmap(ap).String()] = true
		}
	}

	var (
		wg      sync.WaitGroup
		results = make(chan Found)
		sem     = make(chan struct{}, maxProbesAtOnce)
		mu      sync.Mutex // guards seen, errs, probed
		seen    = map[netip.AddrPort]bool{}
		errs    []error
		probed  int
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// consider probes up to MaxFoundPerResponse new addresses of one answer.
	// It runs on a goroutine counted in wg, so its wg.Add calls are safe.
	consider := func(addrs []netip.AddrPort, via string) {
		if len(addrs) > MaxFoundPerResponse {
			addrs = addrs[:MaxFoundPerResponse]
		}
		for _, a := range addrs {
			a = unmap(a)
			mu.Lock()
			skip := !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified() || seen[a] || exclude[a.String()]
			seen[a] = true
			if !skip {
				probed++
			}
			mu.Unlock()
			if skip {
				continue
			}
			cfg.Logger.Debug("relay lookup: candidate", "addr", a, "via", via)
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				err := cfg.probe(ctx, a)
				<-sem
				if err != nil {
					cfg.Logger.Debug("relay lookup: candidate did not answer", "addr", a, "via", via, "err", err)
					return
				}
				select {
				case results <- Found{Addr: a, Via: via}:
				case <-ctx.Done():
				}
			}()
		}
	}
	for _, u := range trackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers, err := cfg.trackerLookup(ctx, u)
			if err != nil {
				fail(err)
				return
			}
			consider(peers, "tracker "+redactURL(u))
		}()
	}
	if cfg.DHT != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers, err := cfg.DHT.GetPeers(ctx, DirectoryHash)
			if err != nil && len(peers) == 0 {
				fail(err) // already says "dht: ..."

				return
			}
			consider(peers, "DHT")
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var found []Found
	for f := range results {
		if len(found) < cfg.Max {
			found = append(found, f)
		}
		if len(found) == cfg.Max {
			cancel() // enough: stop the other sources and probes
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	mu.Lock()
	defer mu.Unlock()
	where := fmt.Sprintf("%d tracker(s)", len(trackers))
	switch {
	case cfg.DHT != nil && len(trackers) == 0:
		where = "the DHT"
	case cfg.DHT != nil:
		where += " and the DHT"
	}
	err := fmt.Errorf("relay lookup: no relay found in %s (%d candidate(s) probed)", where, probed)
	if len(errs) > 0 {
		err = fmt.Errorf("%w: %w", err, errors.Join(errs...))
	}
	return nil, err
}

// trackerLookup announces DirectoryHash to one tracker as a leecher and
// withdraws at once (event=stopped), returning the listed addresses.
func (cfg *FinderConfig) trackerLookup(ctx context.Context, u string) ([]netip.AddrPort, error) {
	id := randomPeerID(lookupPeerIDPrefix)
	req := tracker.AnnounceRequest{
		InfoHash: DirectoryHash, PeerID: id, Port: cfg.Port, Left: LookupLeft,
		Event: tracker.Started, NumWant: LookupNumWant, Key: binary.BigEndian.Uint32(id[16:]),
	}
	actx, cancel := context.WithTimeout(ctx, cfg.TrackerTimeout)
	resp, err := cfg.Tracker.Announce(actx, u, req)
	cancel()
	if err != nil {
		return nil, err
	}
	// withdraw even when ctx has just ended (enough relays found)
	req.Event = tracker.Stopped
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stoppedTimeout)
	if _, err := cfg.Tracker.Announce(sctx, u, req); err != nil {
		cfg.Logger.Debug("relay lookup: stopped announce", "tracker", redactURL(u), "err", err)
	}
	scancel()
	return resp.Peers, nil
}

// FindRelays looks in the relay directory until it has found cfg.Max relays
// or ctx ends, calling use with each batch of new relays (on this
// goroutine). It looks again while relays are missing: after FirstRelookup,
// then after twice as long each time, up to every cfg.Interval,
// and tells the user (cfg.Notify) what it found, or that it found nothing.
// With cfg.Lost it also replaces relays that stop working, until ctx ends.
func FindRelays(ctx context.Context, cfg FinderConfig, use func([]Found)) {
	cfg.defaults()
	cfg.Exclude = slices.Clone(cfg.Exclude) // appended to below: not the caller's array
	want := cfg.Max
	got := 0
	wait := min(FirstRelookup, cfg.Interval) // a DHT node may still be joining at first
	first := true
	for ctx.Err() == nil {
		var again <-chan time.Time // nil while we have enough: wait for a loss
		if got < want {
			c := cfg
			c.Max = want - got
			found, err := Lookup(ctx, c)
			if ctx.Err() != nil {
				return
			}
			for _, f := range found {
				cfg.Notify(fmt.Sprintf("found relay %s via %s", f.Addr, f.Via))
				cfg.Exclude = append(cfg.Exclude, f.Addr.String())
			}
			if len(found) > 0 {
				got += len(found)
				use(found)
			}
			switch {
			case got >= want && cfg.Lost == nil:
				return
			case got >= want:
			case got == 0 && first && cfg.DHT != nil:
				// the DHT node has likely not joined yet: not worth alarming anyone
				cfg.Logger.Debug("relay lookup: nothing found yet", "err", err, "retry in", wait)
			case got == 0:
				cfg.Notify(fmt.Sprintf("%v; looking again in %v", err, wait))
			default:
				cfg.Logger.Debug("relay lookup: fewer relays than wanted", "have", got, "want", want, "err", err)
			}
			if got < want {
				again = time.After(wait) // collected once it fires or is dropped (Go 1.23 timers)
				wait = min(wait*2, cfg.Interval)
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-again:
		case a := <-cfg.Lost:
			got--
			cfg.Exclude = slices.DeleteFunc(cfg.Exclude, func(e string) bool { return e == a })
			cfg.Notify(fmt.Sprintf("relay %s stopped working; looking for another", a))
			wait = min(FirstRelookup, cfg.Interval)
		}
	}
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// redactURL renders a tracker URL for messages without its query or user
// info (private trackers put passkeys there).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.RawQuery != "" {
		r.RawQuery = "…"
	}
	return r.String()
}
