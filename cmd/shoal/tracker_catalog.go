package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
	"github.com/shoal-p2p/shoal/internal/tracker/server"
)

// startCatalog opens the --catalog store, mounts its handler on cfg and
// starts the feeder that fetches metadata from announcing peers. The feeder
// and its session client report their end on errc (once, together); stop
// waits for them and closes the store.
func startCatalog(ctx context.Context, f trackerFlags, cfg *server.Config, log *slog.Logger, errc chan<- error) (stop func(), err error) {
	store, err := catalog.Open(ctx, f.catalog)
	if err != nil {
		return nil, fmt.Errorf("tracker: --catalog: %w", err)
	}
	client, err := session.NewClient(session.Config{Listen: f.catalogListen, Logger: log.With("room", "catalog-fetch")})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("tracker: catalog fetcher: %w", err)
	}
	feeder, err := catalog.NewFeeder(catalog.FeederConfig{
		Store: store, Fetcher: client, Rate: f.catalogRate, Logger: log.With("room", "catalog"),
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	cfg.Catalog = catalog.Mux(store, log.With("room", "catalog"), nil)
	cfg.OnAnnounce = func(ih server.InfoHash, addr netip.AddrPort, seeders, leechers int) {
		feeder.Announce(metainfo.Hash(ih), addr, seeders, leechers)
	}
	ctx, cancel := context.WithCancel(ctx)
	clientDone := make(chan struct{})
	go func() { defer close(clientDone); client.Run(ctx) }()
	feederDone := make(chan struct{})
	go func() {
		defer close(feederDone)
		errc <- feeder.Run(ctx)
	}()
	log.Info("tracker: catalog on", "store", catalogName(f.catalog), "fetcher", client.Addr().String())
	return func() {
		cancel()
		<-feederDone
		<-clientDone
		store.Close()
	}, nil
}

// catalogName hides credentials a postgres URL may carry.
func catalogName(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 && strings.Contains(s, "://") {
		return s[:strings.Index(s, "://")+3] + "…" + s[i:]
	}
	return s
}
