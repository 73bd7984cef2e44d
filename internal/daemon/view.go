package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
	"github.com/shoal-p2p/shoal/internal/stream"
)

// View is a snapshot of one torrent for the API.
type View struct {
	ID    int    `json:"id"`
	Hash  string `json:"hash"`
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Dir   string `json:"dir"`
	Size  int64  `json:"size"`
	Have  int64  `json:"have"` // verified bytes, wanted or not
	// SizeWhenDone and Left are Transmission's sizeWhenDone and
	// leftUntilDone: the wanted pieces (plus verified others), and the
	// wanted bytes still missing. Progress is of the wanted part.
	SizeWhenDone int64       `json:"size_when_done"`
	Left         int64       `json:"left"`
	Progress     float64     `json:"progress"` // 0..1
	Verify       float64     `json:"verify"`   // 0..1 while checking
	DownRate     float64     `json:"down_rate"`
	UpRate       float64     `json:"up_rate"`
	Downloaded   int64       `json:"downloaded"`
	Uploaded     int64       `json:"uploaded"`
	Ratio        float64     `json:"ratio"`
	ETA          int64       `json:"eta"` // seconds; -1 unknown
	Peers        int         `json:"peers"`
	Seeds        int         `json:"seeds"`
	HashFails    int         `json:"hash_fails"`
	NumPieces    int         `json:"num_pieces"`
	PieceLength  int64       `json:"piece_length"`
	Added        time.Time   `json:"added"`
	Completed    time.Time   `json:"completed,omitzero"`
	SeedTime     int64       `json:"seed_seconds"`
	SeedRatio    float64     `json:"seed_ratio"`
	SeedLimit    int64       `json:"seed_limit"`
	UpLimit      int64       `json:"up_limit"`
	DownLimit    int64       `json:"down_limit"`
	Magnet       string      `json:"magnet"`
	HasMeta      bool        `json:"has_metadata"`
	Finished     bool        `json:"finished_seeding"`
	Private      bool        `json:"private"`
	PeakPeers    int         `json:"peak_peers"`    // most peers at once in this run
	WebseedBytes int64       `json:"webseed_bytes"` // payload from web seeds in this run
	Tracker      TrackerView `json:"tracker"`
}

// TrackerView is what the announcer knows of a torrent's trackers (this
// run, or the last one while stopped).
type TrackerView struct {
	Announces int       `json:"announces"` // answered announces, all trackers
	Failures  int       `json:"failures"`
	LastURL   string    `json:"last_url,omitempty"`
	Peers     int       `json:"peers"`    // in the last answer
	Seeders   int       `json:"seeders"`  // -1 unknown
	Leechers  int       `json:"leechers"` // -1 unknown
	LastError string    `json:"last_error,omitempty"`
	LastAt    time.Time `json:"last_at,omitzero"`
}

func trackerView(ts session.TrackerStats) TrackerView {
	return TrackerView{
		Announces: ts.Announces, Failures: ts.Failures, LastURL: ts.LastURL, Peers: ts.LastPeers,
		Seeders: ts.LastSeeders, Leechers: ts.LastLeechers, LastError: ts.LastError, LastAt: ts.LastAt,
	}
}

// FileView is one file of a torrent.
type FileView struct {
	Index    int    `json:"index"`
	Path     string `json:"path"`
	Length   int64  `json:"length"`
	Have     int64  `json:"have"` // verified bytes
	Wanted   bool   `json:"wanted"`
	Priority int    `json:"priority"`
	Media    bool   `json:"media"` // worth a play button
}

// Detail is a torrent with its files, trackers and peers.
type Detail struct {
	View
	Files    []FileView         `json:"files"`
	Trackers []string           `json:"trackers"`
	PeerList []session.PeerInfo `json:"peer_list"`
	Comment  string             `json:"comment,omitempty"`
}

func (m *Manager) viewLocked(e *entry) View {
	r := &e.rec
	v := View{
		ID: r.ID, Hash: r.InfoHash, Name: r.Name, State: e.state, Error: r.Error, Dir: r.Dir,
		Size: r.Size, Have: r.Have, Downloaded: r.Downloaded, Uploaded: r.Uploaded,
		Added: r.Added, Completed: r.Completed, SeedTime: r.SeedTime, SeedRatio: r.SeedRatio, SeedLimit: r.SeedLimit,
		UpLimit: r.UpLimit, DownLimit: r.DownLimit, HasMeta: e.mi != nil, Finished: r.FinishedSeeding, ETA: -1,
		Magnet: r.Magnet, Tracker: e.tracker,
	}
	if e.mi != nil {
		v.Magnet = e.mi.Magnet()
		v.NumPieces = e.mi.Info.NumPieces()
		v.PieceLength = e.mi.Info.PieceLength
		v.Private = e.mi.Info.Private
	}
	if e.t != nil {
		st := e.t.Stats()
		v.Have = st.Size - st.Left
		v.Size = st.Size
		v.DownRate, v.UpRate = st.DownRate, st.UpRate
		v.Downloaded, v.Uploaded = e.baseDown+st.Downloaded, e.baseUp+st.Uploaded
		v.Peers, v.Seeds, v.HashFails = st.Peers, st.Seeds, st.HashFails
		v.PeakPeers, v.WebseedBytes = st.PeakPeers, st.WebseedBytes
		v.Tracker = trackerView(e.t.TrackerStats())
	}
	v.SizeWhenDone, v.Left = m.wantedLocked(e, v.Size, v.Have)
	if v.Left > 0 && v.DownRate > 1 {
		v.ETA = int64(float64(v.Left) / v.DownRate)
	}
	v.Progress = progress(v.SizeWhenDone, v.Left, e.mi != nil)
	if e.state == StateChecking && e.verifyTotal > 0 {
		v.Verify = float64(e.verifyDone) / float64(e.verifyTotal)
	}
	rr := *r
	rr.Uploaded, rr.Downloaded, rr.Size = v.Uploaded, v.Downloaded, v.Size
	v.Ratio = ratioOf(&rr)
	return v
}

func progress(size, left int64, hasMeta bool) float64 {
	if size > 0 {
		return float64(size-left) / float64(size)
	}
	if hasMeta {
		return 1
	}
	return 0
}

// List returns every torrent, in ID order.
func (m *Manager) List() []View {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]View, 0, len(m.byHash))
	for _, e := range m.sortedEntries() {
		out = append(out, m.viewLocked(e))
	}
	return out
}

// Hashes returns the info-hashes in ID order.
func (m *Manager) Hashes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.byHash))
	for _, e := range m.sortedEntries() {
		out = append(out, e.rec.InfoHash)
	}
	return out
}

// HashByID finds a torrent by its numeric ID.
func (m *Manager) HashByID(id int) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, e := range m.byHash {
		if e.rec.ID == id {
			return h, true
		}
	}
	return "", false
}

// Get returns one torrent with its files, trackers and peers.
func (m *Manager) Get(hash string) (Detail, error) {
	m.mu.Lock()
	e, err := m.get(hash)
	if err != nil {
		m.mu.Unlock()
		return Detail{}, err
	}
	d := Detail{View: m.viewLocked(e)}
	t, mi, prefs := e.t, e.mi, append([]FilePref(nil), e.rec.Files...)
	pieces := e.pieces // the last map seen (a stopped torrent's last run), if any
	m.mu.Unlock()
	if t != nil {
		if pm := t.PieceMap(); pm != nil {
			pieces = pm
		}
		d.PeerList = t.Peers()
		if mi != nil && pieces != nil && !allWanted(prefs) {
			d.SizeWhenDone, d.Left = wantedFigures(mi.Info, prefs, pieces)
			d.Progress = progress(d.SizeWhenDone, d.Left, true)
		}
	}
	if d.PeerList == nil {
		d.PeerList = []session.PeerInfo{}
	}
	d.Trackers = []string{}
	if mi != nil {
		d.Comment = mi.Comment
		for _, tier := range mi.Trackers() {
			d.Trackers = append(d.Trackers, tier...)
		}
		d.Files = fileViews(mi.Info, pieces, prefs, d.Size > 0 && d.Have >= d.Size)
	}
	return d, nil
}

func fileViews(info *metainfo.Info, pieces []bool, prefs []FilePref, complete bool) []FileView {
	out := []FileView{}
	for i, f := range info.Files {
		if f.Padding {
			continue
		}
		fv := FileView{Index: i, Path: joinPath(f.Path), Length: f.Length, Wanted: true}
		if i < len(prefs) {
			fv.Wanted, fv.Priority = prefs[i].Wanted, prefs[i].Priority
		}
		fv.Media = stream.IsMedia(fv.Path)
		switch {
		case complete:
			fv.Have = f.Length
		case pieces != nil && f.Length > 0:
			first, last := info.FilePieces(i)
			for p := first; p <= last && p < len(pieces); p++ {
				if !pieces[p] {
					continue
				}
				ps := info.PieceOffset(p)
				pe := ps + info.PieceSize(p)
				lo, hi := max(ps, f.Offset), min(pe, f.Offset+f.Length)
				if hi > lo {
					fv.Have += hi - lo
				}
			}
		}
		out = append(out, fv)
	}
	return out
}

func joinPath(p []string) string {
	s := ""
	for i, c := range p {
		if i > 0 {
			s += "/"
		}
		s += c
	}
	return s
}

// Swarm returns the peers and the remembered tit-for-tat rounds.
func (m *Manager) Swarm(hash string) ([]session.PeerInfo, []session.ChokeRound, error) {
	t, err := m.running(hash)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		return []session.PeerInfo{}, []session.ChokeRound{}, nil
	}
	return t.Peers(), t.ChokeRounds(), nil
}

// PieceMap returns which pieces are verified (nil while not running).
func (m *Manager) PieceMap(hash string) ([]bool, error) {
	t, err := m.running(hash)
	if err != nil || t == nil {
		return nil, err
	}
	return t.PieceMap(), nil
}

// Running returns the engine's torrent (nil while not running), for
// streaming.
func (m *Manager) Running(hash string) (*session.Torrent, error) { return m.running(hash) }

func (m *Manager) running(hash string) (*session.Torrent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return nil, err
	}
	return e.t, nil
}

// Changes are the per-torrent settings a client may change; nil fields stay.
type Changes struct {
	SeedRatio *float64     `json:"seed_ratio,omitempty"`
	SeedLimit *int64       `json:"seed_limit,omitempty"`
	UpLimit   *int64       `json:"up_limit,omitempty"`
	DownLimit *int64       `json:"down_limit,omitempty"`
	Files     []FileChange `json:"files,omitempty"`
	Peers     []string     `json:"peers,omitempty"` // extra peers to add (used at the next start)
}

// FileChange sets one file's preferences; nil fields stay.
type FileChange struct {
	Index    int   `json:"index"`
	Wanted   *bool `json:"wanted,omitempty"`
	Priority *int  `json:"priority,omitempty"`
}

// Set applies changes to a torrent.
// File choices and speed limits reach a running torrent at once (and
// are given to the engine at every start).
func (m *Manager) Set(hash string, c Changes) error {
	live, err := m.set(hash, c)
	if err != nil || !live {
		return err
	}
	return m.applyLive(hash)
}

func (m *Manager) set(hash string, c Changes) (live bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return false, err
	}
	r := &e.rec
	for _, fc := range c.Files {
		if fc.Index < 0 || fc.Index >= len(r.Files) {
			return false, fmt.Errorf("no file %d (the torrent has %d)", fc.Index, len(r.Files))
		}
		if fc.Priority != nil && (*fc.Priority < -1 || *fc.Priority > 1) {
			return false, errors.New("priority must be -1, 0 or 1")
		}
	}
	if c.UpLimit != nil && *c.UpLimit < 0 || c.DownLimit != nil && *c.DownLimit < 0 {
		return false, errors.New("speed limits must not be negative")
	}
	for _, fc := range c.Files {
		if fc.Wanted != nil {
			r.Files[fc.Index].Wanted = *fc.Wanted
		}
		if fc.Priority != nil {
			r.Files[fc.Index].Priority = *fc.Priority
		}
	}
	if c.SeedRatio != nil {
		r.SeedRatio = *c.SeedRatio
	}
	if c.SeedLimit != nil {
		r.SeedLimit = *c.SeedLimit
	}
	if c.UpLimit != nil {
		r.UpLimit = *c.UpLimit
	}
	if c.DownLimit != nil {
		r.DownLimit = *c.DownLimit
	}
	r.Peers = append(r.Peers, c.Peers...)
	e.dirty = true
	m.saveLocked(e)
	m.notifyLocked()
	live = len(c.Files) > 0 || c.UpLimit != nil || c.DownLimit != nil
	if live {
		e.prefsGen++
	}
	return live && e.t != nil, nil
}

// Settings returns the daemon-wide settings.
func (m *Manager) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings
}

// UpdateSettings applies fn to a copy of the settings, validates and saves
// the result. Global rate limits reach the engine at once.
func (m *Manager) UpdateSettings(fn func(*Settings)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.settings
	fn(&s)
	if s.MaxActive < 0 || s.UploadRate < 0 || s.DownloadRate < 0 || s.SeedLimit < 0 || s.SeedRatio < 0 {
		return errors.New("settings must not be negative")
	}
	if s.DownloadDir != m.settings.DownloadDir {
		m.mu.Unlock()
		dir, err := m.ResolveDir(s.DownloadDir)
		m.mu.Lock()
		if err != nil {
			return err
		}
		s.DownloadDir = dir
	}
	if err := m.store.PutSettings(s); err != nil {
		return err
	}
	if s.UploadRate != m.settings.UploadRate || s.DownloadRate != m.settings.DownloadRate {
		m.cfg.Engine.SetRates(s.UploadRate, s.DownloadRate)
	}
	m.settings = s
	m.notifyLocked()
	m.kick()
	return nil
}

// Totals are session-wide counters.
type Totals struct {
	Torrents, Active, Paused int
	DownRate, UpRate         float64
	Downloaded, Uploaded     int64 // over all runs, of the torrents present
	Peers                    int
}

// Totals sums every torrent.
func (m *Manager) Totals() Totals {
	var t Totals
	for _, v := range m.List() {
		t.Torrents++
		switch v.State {
		case StateStopped:
			t.Paused++
		case StateDownloading, StateSeeding, StateChecking, StateMetadata:
			t.Active++
		}
		t.DownRate += v.DownRate
		t.UpRate += v.UpRate
		t.Downloaded += v.Downloaded
		t.Uploaded += v.Uploaded
		t.Peers += v.Peers
	}
	return t
}
