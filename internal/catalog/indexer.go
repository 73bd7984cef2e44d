package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Sampler is the DHT side the Indexer needs (BEP 51).
type Sampler interface {
	// Sample asks the node at addr for a sample of the info-hashes it
	// stores and returns them with other nodes to ask.
	Sample(ctx context.Context, addr netip.AddrPort) ([][20]byte, []netip.AddrPort, error)
	// Nodes returns nodes to start from (the routing table).
	Nodes() []netip.AddrPort
}

// Fetcher fetches an info dictionary by info-hash (BEP 9).
type Fetcher interface {
	FetchMetadata(ctx context.Context, m *metainfo.Magnet) ([]byte, []netip.AddrPort, error)
}

// IndexProgress is a snapshot for a progress line.
type IndexProgress struct {
	NodesQueried, Sampled, Pending, Indexed, Failed, Running int
}

// IndexerConfig configures an Indexer.
type IndexerConfig struct {
	Store        *SQLite
	Sampler      Sampler
	Fetcher      Fetcher
	Rate         float64       // network actions (sample queries and fetch starts) per second; default 5
	Max          int           // stop after this many torrents indexed by this run (0 = no limit)
	Parallel     int           // metadata fetches at once (default 4)
	FetchTimeout time.Duration // per fetch (default 30 s)
	MaxTries     int           // fetch attempts per info-hash before giving up (default 3)
	StopWhenIdle bool          // stop when no node is left to sample and nothing is pending
	Progress     func(IndexProgress)
	Logger       *slog.Logger
}

// Indexer samples info-hashes from the DHT, fetches their metadata and puts
// them in the catalog. Its state lives in the Store (dht_samples), so a new
// run resumes the pending ones. All fields are owned by Run's goroutine.
type Indexer struct {
	cfg IndexerConfig
}

// NewIndexer checks cfg and fills defaults.
func NewIndexer(cfg IndexerConfig) (*Indexer, error) {
	if cfg.Store == nil || cfg.Sampler == nil || cfg.Fetcher == nil {
		return nil, errors.New("catalog: indexer needs a store, a sampler and a fetcher")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 5
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 30 * time.Second
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Indexer{cfg: cfg}, nil
}

type fetchResult struct {
	ih   metainfo.Hash
	info *metainfo.Info
	err  error
}

// maxFrontier bounds the nodes waiting to be sampled.
const maxFrontier = 4096

// Run indexes until ctx ends, Max torrents are indexed, or (StopWhenIdle)
// there is nothing left to do. It returns nil in those cases.
func (ix *Indexer) Run(ctx context.Context) error {
	c := ix.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
	defer tick.Stop()
	results := make(chan fetchResult, c.Parallel)
	running := map[metainfo.Hash]bool{}
	defer func() { // wait for fetches: they were cancelled with ctx
		for range running {
			<-results
		}
	}()

	var frontier []netip.AddrPort
	asked := map[netip.AddrPort]bool{}
	push := func(as []netip.AddrPort) {
		for _, a := range as {
			if !asked[a] && len(frontier) < maxFrontier {
				asked[a] = true
				frontier = append(frontier, a)
			}
		}
	}
	push(c.Sampler.Nodes())
	var p IndexProgress
	report := func() {
		pending, _, _, err := c.Store.SampleCounts(ctx)
		if err == nil {
			p.Pending = pending
		}
		p.Running = len(running)
		if c.Progress != nil {
			c.Progress(p)
		}
	}
	sampleTurn := true
	for {
		if c.Max > 0 && p.Indexed >= c.Max {
			report()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			delete(running, r.ih)
			now := time.Now()
			if r.err == nil {
				if err := c.Store.Put(ctx, FromInfo(r.info, now)); err != nil {
					r.err = err
				}
			}
			if r.err != nil {
				c.Logger.Debug("index: fetch failed", "info_hash", r.ih, "err", r.err)
				p.Failed++
			} else {
				p.Indexed++
			}
			if err := c.Store.MarkSample(ctx, r.ih, r.err == nil, c.MaxTries, now); err != nil && ctx.Err() == nil {
				return err
			}
			report()
		case <-tick.C:
			// Alternate between sampling a node and starting a fetch, so
			// neither starves; fall through to the other when one has no work.
			var pending []metainfo.Hash
			if len(running) < c.Parallel {
				var err error
				if pending, err = c.Store.PendingSamples(ctx, 1, running); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			if len(frontier) == 0 && len(asked) > 0 && len(pending) == 0 && len(running) == 0 {
				if c.StopWhenIdle {
					report()
					return nil
				}
				clear(asked) // start a new round from the routing table
				push(c.Sampler.Nodes())
			}
			if len(frontier) > 0 && (sampleTurn || len(pending) == 0) {
				a := frontier[0]
				frontier = frontier[1:]
				hs, nodes, err := c.Sampler.Sample(ctx, a)
				p.NodesQueried++
				if err != nil {
					c.Logger.Debug("index: sample failed", "node", a, "err", err)
				} else {
					push(nodes)
					ihs := make([]metainfo.Hash, len(hs))
					for i, h := range hs {
						ihs[i] = h
					}
					n, err := c.Store.AddSamples(ctx, ihs, time.Now())
					if err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return err
					}
					p.Sampled += n
				}
				sampleTurn = false
				report()
				continue
			}
			sampleTurn = true
			if len(pending) > 0 {
				ih := pending[0]
				running[ih] = true
				go func() {
					fctx, fcancel := context.WithTimeout(ctx, c.FetchTimeout)
					defer fcancel()
					raw, _, err := c.Fetcher.FetchMetadata(fctx, &metainfo.Magnet{InfoHash: ih})
					var info *metainfo.Info
					if err == nil {
						info, err = metainfo.ParseInfo(raw)
						if err == nil && info.Hash() != ih {
							err = fmt.Errorf("metadata of %s hashes to %s", ih, info.Hash())
						}
					}
					results <- fetchResult{ih: ih, info: info, err: err}
				}()
				report()
			}
		}
	}
}
