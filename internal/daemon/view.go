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
	ID          int       `json:"id"`
	Hash        string    `json:"hash"`
	Name        string    `json:"name"`
	State       string    `json:"state"`
	Error       string    `json:"error,omitempty"`
	Dir         string    `json:"dir"`
	Size        int64     `json:"size"`
	Have        int64     `json:"have"`
	Progress    float64   `json:"progress"` // 0..1
	Verify      float64   `json:"verify"`   // 0..1 while checking
	DownRate    float64   `json:"down_rate"`
	UpRate      float64   `json:"up_rate"`
	Downloaded  int64     `json:"downloaded"`
	Uploaded    int64     `json:"uploaded"`
	Ratio       float64   `json:"ratio"`
	ETA         int64     `json:"eta"` // seconds; -1 unknown
	Peers       int       `json:"peers"`
	Seeds       int       `json:"seeds"`
	HashFails   int       `json:"hash_fails"`
	NumPieces   int       `json:"num_pieces"`
	PieceLength int64     `json:"piece_length"`
	Added       time.Time `json:"added"`
	Completed   time.Time `json:"completed,omitzero"`
	SeedTime    int64     `json:"seed_seconds"`
	SeedRatio   float64   `json:"seed_ratio"`
	SeedLimit   int64     `json:"seed_limit"`
	UpLimit     int64     `json:"up_limit"`
	DownLimit   int64     `json:"down_limit"`
	Magnet      string    `json:"magnet"`
	HasMeta     bool      `json:"has_metadata"`
	Finished    bool      `json:"finished_seeding"`
	Private     bool      `json:"private"`
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
		Magnet: r.Magnet,
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
		if st.Left > 0 && st.DownRate > 1 {
			v.ETA = int64(float64(st.Left) / st.DownRate)
		}
	}
	if v.Size > 0 {
		v.Progress = float64(v.Have) / float64(v.Size)
	} else if e.mi != nil {
		v.Progress = 1
	}
	if e.state == StateChecking && e.verifyTotal > 0 {
		v.Verify = float64(e.verifyDone) / float64(e.verifyTotal)
	}
	rr := *r
	rr.Uploaded, rr.Downloaded, rr.Size = v.Uploaded, v.Downloaded, v.Size
	v.Ratio = ratioOf(&rr)
	return v
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
	m.mu.Unlock()
	var pieces []bool
	if t != nil {
		pieces = t.PieceMap()
		d.PeerList = t.Peers()
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
		d.Files = fileViews(mi.Info, pieces, prefs, d.Progress >= 1)
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
func (m *Manager) Set(hash string, c Changes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return err
	}
	r := &e.rec
	for _, fc := range c.Files {
		if fc.Index < 0 || fc.Index >= len(r.Files) {
			return fmt.Errorf("no file %d", fc.Index)
		}
		if fc.Priority != nil && (*fc.Priority < -1 || *fc.Priority > 1) {
			return errors.New("priority must be -1, 0 or 1")
		}
	}
	if c.UpLimit != nil && *c.UpLimit < 0 || c.DownLimit != nil && *c.DownLimit < 0 {
		return errors.New("speed limits must not be negative")
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
	return nil
}

// Settings returns the daemon-wide settings.
func (m *Manager) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings
}

// UpdateSettings applies fn to a copy of the settings, validates and saves
// the result. Global rate limits are given to the engine at start (see docs).
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
