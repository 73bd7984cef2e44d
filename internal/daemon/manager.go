// Package daemon is shoal's long-running torrent manager: many torrents in
// one session, their state kept in an embedded store (see store.go) so that
// everything survives a restart or a kill -9, a download queue, seeding
// goals, and a watch folder. It builds on the engine's small surface
// (session.Client Add/AddMagnet, Torrent Close/Stats/...): stop is
// Torrent.Close, start is Add again (the engine's resume record makes that
// fast), verify is Close + delete the resume record + Add.
package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// Engine is what the manager needs of the BitTorrent engine; *session.Client
// implements it.
type Engine interface {
	Add(ctx context.Context, mi *metainfo.MetaInfo, opts session.Options) (*session.Torrent, error)
	AddMagnet(ctx context.Context, m *metainfo.Magnet, opts session.Options) (*session.Torrent, error)
	// SetRates changes the session-wide limits (bytes/s, 0 = unlimited) at once.
	SetRates(up, down int64)
}

// States of a torrent as the daemon reports them.
const (
	StateStopped     = "stopped"
	StateQueued      = "queued"
	StateChecking    = "checking"    // Add is running: resume record or hashing
	StateMetadata    = "metadata"    // magnet: fetching the info dictionary
	StateDownloading = "downloading" // running, incomplete
	StateSeeding     = "seeding"     // running, complete
	StateError       = "error"
)

// Errors callers can test for.
var (
	ErrNotFound = errors.New("no such torrent")
	ErrExists   = errors.New("torrent already added")
	ErrOutside  = errors.New("folder is outside the data folder")
)

// Config configures a Manager.
type Config struct {
	DataDir  string // every torrent's data lives below it (required)
	StateDir string // the store; "" = DataDir/.shoal-daemon
	Engine   Engine
	Logger   *slog.Logger
	// StartWorkers bounds how many torrents are opened (resume check or
	// hashing) at once; 0 = 4.
	StartWorkers int
	// Tick is the supervision interval (queue, seeding goals, saving
	// counters); 0 = 1 s.
	Tick time.Duration
	// FetchURL downloads a .torrent by URL (nil = plain HTTP GET with caps).
	FetchURL func(ctx context.Context, url string) ([]byte, error)
}

// entry is one torrent. Every field is guarded by Manager.mu.
type entry struct {
	rec   Record
	mi    *metainfo.MetaInfo // nil until the metadata is known
	t     *session.Torrent   // nil unless running
	state string
	gen   int                // bumps on every start and stop; a start that finds it changed gives up
	stop  context.CancelFunc // cancels the current start/run
	// totals in rec at the start of the current run (the engine's counters start at zero)
	baseUp, baseDown int64
	dirty            bool // rec changed since last saved
	verifyDone       int64
	verifyTotal      int64
	probed           bool          // looksComplete has checked the files once
	seedAcc          time.Duration // seeding time not yet counted in rec.SeedTime
	tracker          TrackerView   // tracker figures of the current or last run
	pieces           []bool        // last piece map of a torrent that skips files (nil if unknown or all wanted)
	prefsGen         int           // bumps when file choices or limits change (a start in flight re-applies them)
}

// Manager runs the daemon's torrents.
type Manager struct {
	// static after New
	cfg     Config
	log     *slog.Logger
	store   *Store
	dataDir string             // absolute, symlinks resolved
	ctx     context.Context    // ends when Run's context ends; torrents run under it
	cancel  context.CancelFunc // ends ctx
	sem     chan struct{}      // start workers
	kicks   chan struct{}      // asks Run for a supervision pass now (cap 1)

	mu       sync.Mutex
	byHash   map[string]*entry // guarded by mu
	settings Settings          // guarded by mu
	nextID   int               // guarded by mu
	subs     map[chan struct{}]struct{}
	applyMu  sync.Mutex     // serialises applyLive's engine calls (taken before mu, never inside it)
	wg       sync.WaitGroup // start goroutines and watchers
}

// New loads the store and returns a Manager; Run starts its torrents.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Engine == nil {
		return nil, errors.New("daemon: DataDir and Engine are required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(abs, ".shoal-daemon")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartWorkers <= 0 {
		cfg.StartWorkers = 4
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.FetchURL == nil {
		cfg.FetchURL = fetchTorrentURL
	}
	st, err := OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, store: st, dataDir: abs,
		sem: make(chan struct{}, cfg.StartWorkers), kicks: make(chan struct{}, 1),
		byHash: map[string]*entry{}, subs: map[chan struct{}]struct{}{}, nextID: 1,
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if m.settings, err = st.Settings(abs); err != nil {
		m.log.Warn("settings unreadable, using defaults", "err", err)
	}
	recs, errs := st.Load()
	for _, err := range errs {
		m.log.Warn("skipping a stored torrent", "err", err)
	}
	for _, r := range recs {
		e := &entry{rec: *r, state: StateStopped}
		if data, err := st.Torrent(r.InfoHash); err == nil {
			if mi, err := metainfo.Parse(data); err == nil {
				e.mi = mi
				m.addMagnetTrackers(e)
			} else {
				m.log.Warn("stored .torrent unreadable", "hash", r.InfoHash, "err", err)
			}
		}
		if e.mi == nil && r.Magnet == "" {
			m.log.Warn("stored torrent has neither metadata nor magnet; skipped", "hash", r.InfoHash)
			continue
		}
		if !r.Paused {
			e.state = StateQueued
		}
		if r.ID >= m.nextID {
			m.nextID = r.ID + 1
		}
		m.byHash[r.InfoHash] = e
	}
	return m, nil
}

// Run supervises the torrents until ctx ends, then stops them all (each
// writes its resume record) and saves the store.
func (m *Manager) Run(ctx context.Context) {
	tick := time.NewTicker(m.cfg.Tick)
	defer tick.Stop()
	m.supervise(time.Now(), false)
	for {
		select {
		case <-ctx.Done():
			m.cancel()
			m.shutdown()
			return
		case now := <-tick.C:
			m.refreshPieces()
			m.supervise(now, true)
		case <-m.kicks:
			m.supervise(time.Now(), false)
		}
	}
}

// runCtx is the context torrents run under (it ends with Run's).
func (m *Manager) runCtx() context.Context { return m.ctx }

func (m *Manager) shutdown() {
	m.mu.Lock()
	var ts []*session.Torrent
	for _, e := range m.byHash {
		if e.stop != nil {
			e.stop()
		}
		if e.t != nil {
			ts = append(ts, e.t)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Go(t.Close)
	}
	wg.Wait()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.byHash {
		m.foldCounters(e)
		m.saveLocked(e)
	}
}

// Subscribe returns a channel that receives (coalesced) notice of changes,
// and a function to unsubscribe.
func (m *Manager) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
	}
}

// notifyLocked wakes subscribers; never blocks.
func (m *Manager) notifyLocked() {
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// saveLocked writes e's record if it changed.
func (m *Manager) saveLocked(e *entry) {
	if !e.dirty {
		return
	}
	if err := m.store.Put(&e.rec); err != nil {
		m.log.Error("saving torrent record", "hash", e.rec.InfoHash, "err", err)
		return
	}
	e.dirty = false
}

// foldCounters copies a running torrent's counters into its record.
func (m *Manager) foldCounters(e *entry) {
	if e.t == nil {
		return
	}
	st := e.t.Stats()
	e.tracker = trackerView(e.t.TrackerStats())
	up, down := e.baseUp+st.Uploaded, e.baseDown+st.Downloaded
	have := st.Size - st.Left
	if up != e.rec.Uploaded || down != e.rec.Downloaded || have != e.rec.Have || st.Size != e.rec.Size {
		e.rec.Uploaded, e.rec.Downloaded, e.rec.Have, e.rec.Size = up, down, have, st.Size
		e.dirty = true
	}
}

func (m *Manager) get(hash string) (*entry, error) {
	e := m.byHash[strings.ToLower(hash)]
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	return e, nil
}

// ResolveDir checks that dir is inside the data folder and returns it
// absolute ("" = the default download folder).
func (m *Manager) ResolveDir(dir string) (string, error) {
	if dir == "" {
		m.mu.Lock()
		dir = m.settings.DownloadDir
		m.mu.Unlock()
		if dir == "" {
			return m.dataDir, nil
		}
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(m.dataDir, dir)
	}
	dir = filepath.Clean(dir)
	if !within(m.dataDir, dir) {
		return "", fmt.Errorf("%w: %s", ErrOutside, dir)
	}
	// Resolve the part that exists, so a symlink cannot lead outside.
	probe := dir
	for {
		if real, err := filepath.EvalSymlinks(probe); err == nil {
			rest, _ := filepath.Rel(probe, dir)
			if !within(m.dataDir, filepath.Join(real, rest)) {
				return "", fmt.Errorf("%w: %s (through a symlink)", ErrOutside, dir)
			}
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	return dir, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// DataDir is the absolute data folder.
func (m *Manager) DataDir() string { return m.dataDir }

// addMagnetTrackers gives a torrent made from a magnet's metadata the
// magnet's trackers (the stored .torrent holds only the info dictionary).
func (m *Manager) addMagnetTrackers(e *entry) {
	if e.rec.Magnet == "" || e.mi == nil || e.mi.Announce != "" || len(e.mi.AnnounceList) > 0 {
		return
	}
	if mg, err := metainfo.ParseMagnet(e.rec.Magnet); err == nil && len(mg.Trackers) > 0 {
		for _, tr := range mg.Trackers {
			e.mi.AnnounceList = append(e.mi.AnnounceList, []string{tr})
		}
		e.mi.Announce = mg.Trackers[0]
	}
}

// torrentFromInfo builds .torrent bytes around a raw info dictionary.
func torrentFromInfo(raw []byte, trackers []string) ([]byte, error) {
	type file struct {
		Announce     string             `bencode:"announce,omitempty"`
		AnnounceList [][]string         `bencode:"announce-list,omitempty"`
		Info         bencode.RawMessage `bencode:"info"`
	}
	f := file{Info: raw}
	if len(trackers) > 0 {
		f.Announce = trackers[0]
		for _, t := range trackers {
			f.AnnounceList = append(f.AnnounceList, []string{t})
		}
	}
	return bencode.Marshal(f)
}

func hexHash(h [20]byte) string { return hex.EncodeToString(h[:]) }

// sortedEntries returns the entries in ID order (caller holds mu).
func (m *Manager) sortedEntries() []*entry {
	es := make([]*entry, 0, len(m.byHash))
	for _, e := range m.byHash {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return a.rec.ID - b.rec.ID })
	return es
}
