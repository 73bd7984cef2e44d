package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// floodFlags configure `shoal search --flood`.
type floodFlags struct {
	on        bool
	via       []string
	peers     []string
	ttl       int
	wait      time.Duration
	listen    string
	noTracker bool
}

// floodSearch joins the swarms of the --via torrents (downloading nothing:
// every file is skipped), sends the query to the shoal peers met there and
// returns what came back. Peers are found through the torrents' trackers
// and --peer.
func floodSearch(ctx context.Context, q string, f *floodFlags) ([]catalog.Result, error) {
	if len(f.via) == 0 {
		return nil, errors.New("--flood needs --via FILE.torrent: the swarm whose shoal peers to ask")
	}
	listen := f.listen
	if listen == "" {
		listen = ":0"
	}
	client, err := session.NewClient(session.Config{Listen: listen})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go client.Run(ctx)
	root, err := os.MkdirTemp("", "shoal-flood-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	var torrents []*session.Torrent
	defer func() {
		for _, t := range torrents {
			t.Close()
		}
	}()
	for _, v := range f.via {
		mi, err := metainfo.Load(v)
		if err != nil {
			return nil, err
		}
		skip := make([]int, len(mi.Info.Files)) // all zero: skip every file
		t, err := client.Add(ctx, mi, session.Options{Root: root, Peers: f.peers, FilePriorities: skip, NoTrackers: f.noTracker})
		if err != nil {
			return nil, err
		}
		torrents = append(torrents, t)
	}
	// give the swarm a moment to connect before asking
	deadline := time.Now().Add(f.wait)
	for client.FloodPeers() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if client.FloodPeers() == 0 {
		return nil, fmt.Errorf("flood: no shoal peer reached in %v through the --via swarms", f.wait)
	}
	rs, st, err := client.FloodSearch(ctx, q, f.ttl, f.wait)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "flood: asked %d peers, %d replies\n", st.Peers, st.Replies)
	return rs, nil
}
