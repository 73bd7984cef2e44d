package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// AddOptions are the choices made when adding a torrent.
type AddOptions struct {
	Dir    string   // folder inside the data folder ("" = the download folder)
	Paused bool     // add stopped
	Peers  []string // extra peers, HOST:PORT
	// Start overrides Settings.StartAdded when non-nil.
	Start *bool
}

// AddTorrent adds a torrent from its .torrent bytes and returns its
// info-hash (hex). ErrExists (wrapped) if it is already there.
func (m *Manager) AddTorrent(data []byte, o AddOptions) (string, error) {
	if len(data) > metainfo.MaxTorrentSize {
		return "", fmt.Errorf("torrent file too large (%d bytes)", len(data))
	}
	mi, err := metainfo.Parse(data)
	if err != nil {
		return "", err
	}
	h := hexHash(mi.InfoHash)
	return h, m.add(h, mi.Info.Name, mi, data, "", o)
}

// AddMagnet adds a torrent by magnet link; its metadata is fetched from
// peers when it starts.
func (m *Manager) AddMagnet(uri string, o AddOptions) (string, error) {
	mg, err := metainfo.ParseMagnet(uri)
	if err != nil {
		return "", err
	}
	h := hexHash(mg.InfoHash)
	name := mg.Name
	if name == "" {
		name = h
	}
	return h, m.add(h, name, nil, nil, mg.String(), o)
}

// AddURL adds a magnet link or downloads a .torrent over HTTP(S).
func (m *Manager) AddURL(ctx context.Context, url string, o AddOptions) (string, error) {
	switch {
	case strings.HasPrefix(url, "magnet:"):
		return m.AddMagnet(url, o)
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		data, err := m.cfg.FetchURL(ctx, url)
		if err != nil {
			return "", err
		}
		return m.AddTorrent(data, o)
	}
	return "", fmt.Errorf("not a magnet link or http(s) URL: %q", url)
}

func (m *Manager) add(h, name string, mi *metainfo.MetaInfo, data []byte, magnet string, o AddOptions) error {
	dir, err := m.ResolveDir(o.Dir)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byHash[h]; ok {
		if e.mi == nil && mi != nil { // the .torrent for a magnet still fetching: take it
			if err := m.store.PutTorrent(h, data); err != nil {
				return err
			}
			e.mi = mi
			m.addMagnetTrackers(e)
			if e.state == StateMetadata {
				m.startLocked(e)
			}
		}
		return fmt.Errorf("%w: %s", ErrExists, e.rec.Name)
	}
	start := m.settings.StartAdded
	if o.Start != nil {
		start = *o.Start
	}
	if o.Paused {
		start = false
	}
	e := &entry{rec: Record{
		InfoHash: h, ID: m.nextID, Name: name, Magnet: magnet, Dir: dir,
		Paused: !start, Added: time.Now().UTC(), Peers: o.Peers,
	}, mi: mi, state: StateStopped, dirty: true}
	if mi != nil {
		e.rec.Size = mi.Info.TotalLength()
		e.rec.Files = defaultPrefs(len(mi.Info.Files))
		if err := m.store.PutTorrent(h, data); err != nil {
			return err
		}
	}
	// The record is written before the torrent counts as added: a crash
	// right after this call still finds it on restart.
	if err := m.store.Put(&e.rec); err != nil {
		return err
	}
	e.dirty = false
	m.nextID++
	m.byHash[h] = e
	if start {
		e.state = StateQueued
		m.kick()
	}
	m.notifyLocked()
	m.log.Info("torrent added", "name", name, "hash", h, "dir", dir)
	return nil
}

// maxFetch caps a .torrent downloaded by URL.
const maxFetch = metainfo.MaxTorrentSize

func fetchTorrentURL(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch torrent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch torrent: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch+1))
	if err != nil {
		return nil, fmt.Errorf("fetch torrent: %w", err)
	}
	if len(b) > maxFetch {
		return nil, errors.New("fetch torrent: larger than the limit")
	}
	return b, nil
}
