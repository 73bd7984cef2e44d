package session

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/tracker"
	"github.com/shoal-p2p/shoal/internal/wire"
)

const (
	metadataPeerTimeout = 30 * time.Second
	metadataParallel    = 8
)

// AddMagnet fetches a torrent's info dictionary from peers (BEP 9), found
// through the magnet's trackers (tr=), its peers (x.pe=) and the DHT, checks
// it against the info-hash, and then adds the torrent as Add does. The info
// dictionary is cached beside the data so that running the same magnet again
// resumes without asking peers for it.
func (c *Client) AddMagnet(ctx context.Context, m *metainfo.Magnet, opts Options) (*Torrent, error) {
	cache := filepath.Join(opts.Root, ".shoal", fmt.Sprintf("%x.torrent", m.InfoHash))
	if data, err := os.ReadFile(cache); err == nil {
		if mi, err := metainfo.Parse(data); err == nil && mi.InfoHash == m.InfoHash {
			return c.Add(ctx, mi, opts)
		}
	}
	raw, peers, err := c.FetchMetadata(ctx, m)
	if err != nil {
		return nil, err
	}
	info, err := metainfo.ParseInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("metadata from peers: %w", err)
	}
	mi := &metainfo.MetaInfo{Info: info, InfoHash: m.InfoHash, URLList: m.WebSeeds}
	if len(m.Trackers) > 0 {
		mi.Announce = m.Trackers[0]
		for _, tr := range m.Trackers {
			mi.AnnounceList = append(mi.AnnounceList, []string{tr})
		}
	}
	if err := writeTorrentCache(cache, mi, raw); err != nil {
		c.log.Warn("could not cache metadata", "err", err)
	}
	for _, p := range peers {
		opts.Peers = append(opts.Peers, p.String())
	}
	return c.Add(ctx, mi, opts)
}

func writeTorrentCache(path string, mi *metainfo.MetaInfo, raw []byte) error {
	doc := struct {
		Announce     string             `bencode:"announce,omitempty"`
		AnnounceList [][]string         `bencode:"announce-list,omitempty"`
		Info         bencode.RawMessage `bencode:"info"`
		URLList      []string           `bencode:"url-list,omitempty"`
	}{mi.Announce, mi.AnnounceList, raw, mi.URLList}
	data, err := bencode.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FetchMetadata finds peers for the magnet and asks them for the info
// dictionary until one gives a copy whose SHA-1 is the info-hash. It returns
// the raw dictionary and the peers it learned of.
func (c *Client) FetchMetadata(ctx context.Context, m *metainfo.Magnet) ([]byte, []netip.AddrPort, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrs := make(chan []netip.AddrPort, 16)
	ih := [20]byte(m.InfoHash)
	go c.magnetSources(ctx, m, addrs)

	type result struct {
		raw  []byte
		addr netip.AddrPort
		err  error
	}
	results := make(chan result, metadataParallel)
	seen := map[netip.AddrPort]bool{}
	var queue, known []netip.AddrPort
	running := 0
	var lastErr error
	for {
		for running < metadataParallel && len(queue) > 0 {
			a := queue[0]
			queue = queue[1:]
			running++
			go func() {
				raw, err := c.metadataFrom(ctx, a, ih)
				results <- result{raw, a, err}
			}()
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, known, fmt.Errorf("%w (last peer error: %v)", ctx.Err(), lastErr)
			}
			return nil, known, fmt.Errorf("no peer gave the metadata: %w", ctx.Err())
		case list := <-addrs:
			for _, a := range list {
				if !seen[a] && a.Port() != 0 && len(seen) < maxCandidates {
					seen[a] = true
					queue = append(queue, a)
					known = append(known, a)
				}
			}
		case r := <-results:
			running--
			if r.err == nil {
				return r.raw, known, nil
			}
			lastErr = r.err
			c.log.Debug("metadata", "peer", r.addr, "err", r.err)
		}
	}
}

// magnetSources feeds peers from x.pe, the trackers and the DHT until ctx ends.
func (c *Client) magnetSources(ctx context.Context, m *metainfo.Magnet, out chan<- []netip.AddrPort) {
	send := func(l []netip.AddrPort) {
		if len(l) == 0 {
			return
		}
		select {
		case out <- l:
		case <-ctx.Done():
		}
	}
	var direct []netip.AddrPort
	for _, p := range m.Peers {
		if ap, err := resolveAddrPort(p); err == nil {
			direct = append(direct, ap)
		}
	}
	send(direct)
	if len(m.Trackers) > 0 {
		go func() {
			var tiers [][]string
			for _, tr := range m.Trackers {
				tiers = append(tiers, []string{tr})
			}
			tl := tracker.NewTiers("", tiers, rand.New(rand.NewPCG(rand.Uint64(), 2)))
			req := tracker.AnnounceRequest{InfoHash: m.InfoHash, PeerID: c.peerID, Port: c.port, Left: -1, NumWant: 200, Event: tracker.Started}
			for ctx.Err() == nil {
				actx, cancel := context.WithTimeout(ctx, 20*time.Second)
				resp, _, err := tl.Announce(actx, c.cfg.Tracker, req)
				cancel()
				if err == nil {
					send(resp.Peers)
				} else {
					c.log.Debug("magnet tracker", "err", err)
				}
				req.Event = tracker.None
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Second):
				}
			}
		}()
	}
	if d := c.cfg.DHT; d != nil {
		go func() {
			for ctx.Err() == nil {
				lctx, cancel := context.WithTimeout(ctx, dhtLookup)
				peers, err := d.GetPeers(lctx, m.InfoHash)
				cancel()
				if err != nil {
					c.log.Debug("magnet dht", "err", err, "peers", len(peers))
				}
				send(peers)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		}()
	}
}

var errNoMetadataSupport = errors.New("peer does not offer ut_metadata")

// metadataFrom connects to one peer and downloads the info dictionary.
func (c *Client) metadataFrom(ctx context.Context, addr netip.AddrPort, ih [20]byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataPeerTimeout)
	defer cancel()
	nc, theirs, err := peer.Dial(ctx, "tcp", addr.String(), c.ourHandshake(ih))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if !theirs.Extended() {
		return nil, errNoMetadataSupport
	}
	var out []byte
	hs := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: extMetadataID}, V: Version, P: int(c.port)}
	out = wire.AppendMessage(out, wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Payload: hs.Marshal()})
	if theirs.Fast() {
		out = wire.AppendMessage(out, wire.Message{ID: wire.HaveNone})
	}
	if _, err := nc.Write(out); err != nil {
		return nil, err
	}
	r := wire.NewReader(nc, 1<<20)
	var (
		buf    []byte
		got    []bool
		remain int
	)
	for {
		msg, err := r.Read()
		if err != nil {
			return nil, err
		}
		if msg.Keepalive || msg.ID != wire.Extended {
			continue
		}
		switch msg.ExtID {
		case wire.ExtHandshakeID:
			h, err := wire.ParseExtHandshake(msg.Payload)
			if err != nil {
				return nil, err
			}
			id := h.M[wire.ExtMetadata]
			if id <= 0 || id > 255 || h.MetadataSize <= 0 {
				return nil, errNoMetadataSupport
			}
			if h.MetadataSize > wire.MaxMetadataSize {
				return nil, fmt.Errorf("metadata size %d over the %d limit", h.MetadataSize, wire.MaxMetadataSize)
			}
			if buf != nil {
				continue
			}
			buf = make([]byte, h.MetadataSize)
			n := (h.MetadataSize + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen
			got = make([]bool, n)
			remain = n
			var req []byte
			for i := 0; i < n; i++ {
				req = wire.AppendMessage(req, wire.Message{ID: wire.Extended, ExtID: uint8(id),
					Payload: wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i})})
			}
			if _, err := nc.Write(req); err != nil {
				return nil, err
			}
		case extMetadataID:
			if buf == nil {
				continue
			}
			mm, err := wire.ParseMetadataMsg(msg.Payload)
			if err != nil {
				return nil, err
			}
			switch mm.Type {
			case wire.MetadataReject:
				return nil, fmt.Errorf("peer rejected metadata piece %d", mm.Piece)
			case wire.MetadataData:
				if mm.TotalSize != len(buf) || mm.Piece < 0 || mm.Piece >= len(got) ||
					len(mm.Data) != wire.MetadataPieceSize(len(buf), mm.Piece) {
					return nil, errors.New("metadata piece does not fit the announced size")
				}
				if !got[mm.Piece] {
					copy(buf[mm.Piece*wire.MetadataPieceLen:], mm.Data)
					got[mm.Piece] = true
					remain--
				}
				if remain == 0 {
					if sha1.Sum(buf) != ih {
						return nil, errors.New("metadata does not match the info-hash")
					}
					return bytes.Clone(buf), nil
				}
			}
		}
	}
}
