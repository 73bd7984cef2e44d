package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// maxFeedAddrs bounds the announcer addresses kept per unknown torrent.
const maxFeedAddrs = 8

// FeederConfig configures a Feeder. Zero fields take their defaults.
type FeederConfig struct {
	Store        Store
	Fetcher      Fetcher       // asks peers for an info dictionary (BEP 9)
	Rate         float64       // metadata fetch starts per second (default 2)
	Parallel     int           // fetches at once (default 4)
	FetchTimeout time.Duration // per fetch (default 20 s)
	MaxTries     int           // attempts per info-hash before giving up (default 3)
	RetryAfter   time.Duration // wait before the first retry, doubled after each (default 30 s)
	QueueLen     int           // announces waiting for the loop; more are dropped (default 1024)
	MaxTracked   int           // info-hashes remembered; announces of new ones beyond are ignored (default 100000)
	Logger       *slog.Logger
}

// FeederStats are a Feeder's counters.
type FeederStats struct {
	Dropped int64 // announces dropped because the queue was full
	Indexed int64 // torrents put in the store from peers' metadata
	Failed  int64 // fetch attempts that failed
	GaveUp  int64 // info-hashes abandoned after MaxTries
}

// Feeder keeps a tracker's catalog fed: for each info-hash seen in an
// announce but not in the store it fetches the info dictionary from the
// announcing peers (rate-limited, a bounded number of tries with growing
// waits) and puts it in the store; for known ones it keeps the seeder and
// leecher counts fresh. Announce never blocks. The tracked state is owned by
// Run's goroutine; the counters are atomic.
type Feeder struct {
	cfg    FeederConfig // static after construction
	events chan feedEvent

	dropped, indexed, failed, gaveUp atomic.Int64
}

type feedEvent struct {
	ih                metainfo.Hash
	addr              netip.AddrPort
	seeders, leechers int
}

// feedState is what Run knows about one info-hash.
type feedState struct {
	known             bool // in the store
	abandoned         bool // MaxTries failed fetches
	fetching          bool
	queued            bool
	tries             int
	next              time.Time // earliest next fetch
	addrs             []netip.AddrPort
	seeders, leechers int  // last counts announced
	written           bool // counts in the store equal seeders/leechers
}

// NewFeeder checks cfg and fills defaults.
func NewFeeder(cfg FeederConfig) (*Feeder, error) {
	if cfg.Store == nil || cfg.Fetcher == nil {
		return nil, errors.New("catalog: feeder needs a store and a fetcher")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 2
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 20 * time.Second
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 3
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Feeder{cfg: cfg, events: make(chan feedEvent, cfg.QueueLen)}, nil
}

// Announce records one announce. It never blocks: when the queue is full the
// event is dropped and counted. Its signature fits the tracker's
// Config.OnAnnounce after converting the hash type.
func (f *Feeder) Announce(ih metainfo.Hash, addr netip.AddrPort, seeders, leechers int) {
	select {
	case f.events <- feedEvent{ih, addr, seeders, leechers}:
	default:
		f.dropped.Add(1)
	}
}

// Stats returns the counters.
func (f *Feeder) Stats() FeederStats {
	return FeederStats{Dropped: f.dropped.Load(), Indexed: f.indexed.Load(), Failed: f.failed.Load(), GaveUp: f.gaveUp.Load()}
}

type feedResult struct {
	ih   metainfo.Hash
	info *metainfo.Info
	err  error
}

// Run handles announces and fetches until ctx ends; it waits for its
// fetches to stop before returning.
func (f *Feeder) Run(ctx context.Context) error {
	c := f.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	state := map[metainfo.Hash]*feedState{}
	var pending []metainfo.Hash // FIFO of unknown hashes waiting for a fetch
	results := make(chan feedResult, c.Parallel)
	running := 0
	defer func() {
		for ; running > 0; running-- {
			<-results
		}
	}()
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
	defer tick.Stop()

	writeCounts := func(ih metainfo.Hash, st *feedState) {
		if !st.known || st.written {
			return
		}
		err := c.Store.SetSeeders(ctx, ih, st.seeders, st.leechers)
		switch {
		case err == nil:
			st.written = true
		case errors.Is(err, ErrNotFound): // removed behind our back: fetch again
			st.known = false
		case ctx.Err() == nil:
			c.Logger.Warn("catalog: setting seeders", "info_hash", ih, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.events:
			st := state[ev.ih]
			if st == nil {
				if len(state) >= c.MaxTracked {
					f.dropped.Add(1)
					continue
				}
				st = &feedState{}
				state[ev.ih] = st
				if _, err := c.Store.Get(ctx, ev.ih); err == nil {
					st.known = true
				} else if !errors.Is(err, ErrNotFound) {
					if ctx.Err() != nil {
						return nil
					}
					c.Logger.Warn("catalog: looking up torrent", "info_hash", ev.ih, "err", err)
				}
			}
			if st.seeders != ev.seeders || st.leechers != ev.leechers {
				st.seeders, st.leechers, st.written = ev.seeders, ev.leechers, false
			}
			if !st.known && ev.addr.IsValid() {
				if i := slices.Index(st.addrs, ev.addr); i >= 0 {
					st.addrs = slices.Delete(st.addrs, i, i+1)
				}
				if len(st.addrs) >= maxFeedAddrs {
					st.addrs = st.addrs[1:]
				}
				st.addrs = append(st.addrs, ev.addr) // most recent last
			}
			if !st.known && !st.abandoned && !st.fetching && !st.queued {
				// An uploaded torrent may have appeared since we last looked.
				if _, err := c.Store.Get(ctx, ev.ih); err == nil {
					st.known = true
				} else {
					st.queued = true
					pending = append(pending, ev.ih)
				}
			}
			writeCounts(ev.ih, st)
		case r := <-results:
			running--
			st := state[r.ih]
			st.fetching = false
			err := r.err
			if err == nil {
				err = c.Store.Put(ctx, FromInfo(r.info, time.Now()))
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.failed.Add(1)
				st.tries++
				c.Logger.Debug("catalog: metadata fetch failed", "info_hash", r.ih, "try", st.tries, "err", err)
				if st.tries >= c.MaxTries {
					st.abandoned = true
					f.gaveUp.Add(1)
					c.Logger.Info("catalog: giving up on torrent", "info_hash", r.ih, "tries", st.tries, "err", err)
					continue
				}
				st.next = time.Now().Add(c.RetryAfter << (st.tries - 1))
				st.queued = true
				pending = append(pending, r.ih)
				continue
			}
			f.indexed.Add(1)
			st.known, st.written, st.addrs = true, false, nil
			c.Logger.Info("catalog: torrent indexed from peers", "info_hash", r.ih, "name", r.info.Name)
			writeCounts(r.ih, st)
		case <-tick.C:
			if running >= c.Parallel {
				continue
			}
			now := time.Now()
			i := slices.IndexFunc(pending, func(ih metainfo.Hash) bool { return !state[ih].next.After(now) })
			if i < 0 {
				continue
			}
			ih := pending[i]
			pending = slices.Delete(pending, i, i+1)
			st := state[ih]
			st.queued = false
			if st.known {
				continue
			}
			st.fetching = true
			running++
			m := &metainfo.Magnet{InfoHash: ih}
			for _, a := range st.addrs {
				m.Peers = append(m.Peers, a.String())
			}
			go func() {
				fctx, fcancel := context.WithTimeout(ctx, c.FetchTimeout)
				defer fcancel()
				results <- fetchInfo(fctx, c.Fetcher, m)
			}()
		}
	}
}

// fetchInfo fetches and parses m's info dictionary and checks its hash.
func fetchInfo(ctx context.Context, fe Fetcher, m *metainfo.Magnet) feedResult {
	raw, _, err := fe.FetchMetadata(ctx, m)
	if err != nil {
		return feedResult{ih: m.InfoHash, err: err}
	}
	info, err := metainfo.ParseInfo(raw)
	if err == nil && info.Hash() != m.InfoHash {
		err = fmt.Errorf("metadata of %s hashes to %s", m.InfoHash, info.Hash())
	}
	return feedResult{ih: m.InfoHash, info: info, err: err}
}
