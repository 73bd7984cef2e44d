package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// supervise runs every tick: it folds counters into the records, notices
// completion, applies seeding goals, starts queued torrents while the queue
// has room, and saves changed records.
func (m *Manager) supervise(now time.Time, ticked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	active := 0
	var queued []*entry
	for _, e := range m.sortedEntries() {
		if e.t != nil {
			m.foldCounters(e)
			st := e.t.Stats()
			// Done: every wanted piece is verified (all of them, or those of
			// the files not skipped): the torrent seeds what it has.
			if st.Done || st.Complete {
				if e.rec.Completed.IsZero() {
					e.rec.Completed = now
					e.dirty = true
				}
				if e.state != StateSeeding {
					e.state = StateSeeding
					changed = true
					m.saveLocked(e) // completion is worth saving at once
				}
				if ticked {
					e.seedAcc += m.cfg.Tick
					for e.seedAcc >= time.Second {
						e.seedAcc -= time.Second
						e.rec.SeedTime++
					}
				}
				if m.goalReached(e) {
					e.rec.FinishedSeeding = true
					m.stopLocked(e)
					changed = true
					continue
				}
			} else if e.state != StateDownloading {
				e.state = StateDownloading
				changed = true
			}
		}
		switch {
		case e.state == StateQueued:
			queued = append(queued, e)
		case e.state == StateDownloading || e.state == StateMetadata:
			active++
		case e.state == StateChecking && e.rec.Completed.IsZero():
			active++
		}
	}
	max := m.settings.MaxActive
	for _, e := range queued {
		// Complete torrents seed without taking a download slot.
		if m.looksComplete(e) {
			m.startLocked(e)
			changed = true
			continue
		}
		if max > 0 && active >= max {
			continue
		}
		active++
		m.startLocked(e)
		changed = true
	}
	for _, e := range m.byHash {
		m.saveLocked(e)
	}
	if changed {
		m.notifyLocked()
	}
}

// looksComplete reports whether a queued torrent is probably a seed: it
// completed before, or (checked once) every file is on disk at full size.
// Such torrents start at once instead of waiting for a download slot.
func (m *Manager) looksComplete(e *entry) bool {
	if !e.rec.Completed.IsZero() && e.rec.Have == e.rec.Size && e.rec.Size > 0 {
		return true
	}
	if !e.rec.Completed.IsZero() && e.rec.WantedSize > 0 && e.rec.WantedLeft == 0 && e.rec.WantedFor == prefsKey(e.rec.Files) {
		return true // its wanted files were done
	}
	if e.mi == nil || e.probed {
		return false
	}
	e.probed = true
	info := e.mi.Info
	for i, f := range info.Files {
		if f.Padding {
			continue
		}
		fi, err := os.Stat(info.FilePath(e.rec.Dir, i))
		if err != nil || fi.Size() != f.Length {
			return false
		}
	}
	return true
}

// goalReached reports whether a seeding torrent met its ratio or time goal.
func (m *Manager) goalReached(e *entry) bool {
	ratio := e.rec.SeedRatio
	if ratio == 0 {
		ratio = m.settings.SeedRatio
	}
	if ratio > 0 {
		if r := ratioOf(&e.rec); r >= ratio {
			return true
		}
	}
	limit := e.rec.SeedLimit
	if limit == 0 {
		limit = m.settings.SeedLimit
	}
	return limit > 0 && e.rec.SeedTime >= limit
}

// ratioOf is uploaded/downloaded, or uploaded/size for a torrent that
// downloaded nothing (it was added complete), as Transmission does.
func ratioOf(r *Record) float64 {
	d := r.Downloaded
	if d == 0 {
		d = r.Size
	}
	if d <= 0 {
		return 0
	}
	return float64(r.Uploaded) / float64(d)
}

// startLocked begins opening a torrent in the background.
func (m *Manager) startLocked(e *entry) {
	e.gen++
	gen := e.gen
	ctx, cancel := context.WithCancel(m.runCtx())
	e.stop = cancel
	e.rec.Error = ""
	e.verifyDone, e.verifyTotal = 0, 0
	mi := e.mi
	if mi == nil {
		e.state = StateMetadata
	} else {
		e.state = StateChecking
	}
	rec := e.rec
	pgen := e.prefsGen
	opts := session.Options{Root: rec.Dir, Peers: rec.Peers, UploadRate: rec.UpLimit, DownloadRate: rec.DownLimit}
	if mi != nil && len(rec.Files) == len(mi.Info.Files) && (!allWanted(rec.Files) || hasHigh(rec.Files)) {
		opts.FilePriorities = enginePriorities(rec.Files)
	}
	opts.VerifyProgress = func(done, total int64) {
		m.mu.Lock()
		if e.gen == gen {
			e.verifyDone, e.verifyTotal = done, total
		}
		m.mu.Unlock()
	}
	m.wg.Go(func() {
		var t *session.Torrent
		var err error
		if mi != nil {
			select {
			case m.sem <- struct{}{}:
				t, err = m.cfg.Engine.Add(ctx, mi, opts)
				<-m.sem
			case <-ctx.Done():
				err = ctx.Err()
			}
		} else {
			var mg *metainfo.Magnet
			if mg, err = metainfo.ParseMagnet(rec.Magnet); err == nil {
				t, err = m.cfg.Engine.AddMagnet(ctx, mg, opts)
			}
		}
		m.started(e, gen, pgen, t, err)
	})
}

// started records the result of a start. pgen is e.prefsGen when the start
// began: choices made meanwhile are given to the running torrent.
func (m *Manager) started(e *entry, gen, pgen int, t *session.Torrent, err error) {
	m.mu.Lock()
	if e.gen != gen { // stopped or removed meanwhile
		m.mu.Unlock()
		if t != nil {
			t.Close()
		}
		return
	}
	defer m.mu.Unlock()
	defer m.notifyLocked()
	if err != nil {
		e.state = StateError
		e.rec.Error = err.Error()
		e.dirty = true
		m.log.Warn("torrent failed to start", "name", e.rec.Name, "err", err)
		return
	}
	e.t = t
	e.baseUp, e.baseDown = e.rec.Uploaded, e.rec.Downloaded
	if e.mi == nil { // metadata arrived for a magnet: keep it
		e.mi = t.MetaInfo()
		var trackers []string
		if mg, err := metainfo.ParseMagnet(e.rec.Magnet); err == nil {
			trackers = mg.Trackers
		}
		if data, err := torrentFromInfo(e.mi.Info.Raw, trackers); err == nil {
			if err := m.store.PutTorrent(e.rec.InfoHash, data); err != nil {
				m.log.Warn("saving metadata", "err", err)
			}
		}
		e.rec.Name = e.mi.Info.Name
		e.rec.Size = e.mi.Info.TotalLength()
		e.dirty = true
	}
	if len(e.rec.Files) != len(e.mi.Info.Files) {
		e.rec.Files = defaultPrefs(len(e.mi.Info.Files))
		e.dirty = true
	}
	if e.prefsGen != pgen {
		h := e.rec.InfoHash
		m.wg.Go(func() {
			if err := m.applyLive(h); err != nil {
				m.log.Warn("applying file choices", "name", e.rec.Name, "err", err)
			}
		})
	}
	st := t.Stats()
	e.rec.Have, e.rec.Size = st.Size-st.Left, st.Size
	if st.Complete || st.Done {
		e.state = StateSeeding
		if e.rec.Completed.IsZero() {
			e.rec.Completed = time.Now()
		}
	} else {
		e.state = StateDownloading
	}
	e.dirty = true
	m.saveLocked(e)
	m.wg.Go(func() { m.watchStopped(e, gen, t) })
}

// watchStopped notices a torrent that stopped on its own (storage error).
// It also asks for a supervision pass as soon as the wanted pieces are done.
func (m *Manager) watchStopped(e *entry, gen int, t *session.Torrent) {
	select {
	case <-t.Done():
		m.kick()
		<-t.Stopped()
	case <-t.Stopped():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.gen != gen || e.t != t {
		return
	}
	m.foldCounters(e)
	e.t = nil
	e.state = StateError
	if err := t.Stats().Err; err != nil {
		e.rec.Error = err.Error()
	} else if m.ctx.Err() != nil {
		e.state = StateQueued // daemon shutting down: not an error
		return
	} else {
		e.rec.Error = "torrent stopped"
	}
	e.dirty = true
	m.saveLocked(e)
	m.notifyLocked()
}

// stopLocked stops a torrent; the engine's Close (which waits for the
// resume record to be written) runs in the background.
func (m *Manager) stopLocked(e *entry) {
	e.gen++
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	m.foldCounters(e)
	t := e.t
	e.t = nil
	e.state = StateStopped
	e.rec.Paused = true
	e.dirty = true
	m.saveLocked(e)
	if t != nil {
		m.wg.Go(t.Close)
	}
}

// closeLocked stops a torrent and returns a function that waits for it
// (call it without holding mu).
func (m *Manager) closeLocked(e *entry) func() {
	e.gen++
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	m.foldCounters(e)
	t := e.t
	e.t = nil
	if t == nil {
		return func() {}
	}
	return t.Close
}

// Start queues a stopped torrent (it runs when the queue has room).
func (m *Manager) Start(hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return err
	}
	e.rec.Paused = false
	e.rec.FinishedSeeding = false
	e.dirty = true
	if e.state == StateStopped || e.state == StateError {
		e.state = StateQueued
	}
	m.saveLocked(e)
	m.notifyLocked()
	m.kick()
	return nil
}

// StartNow starts a torrent at once, bypassing the queue.
func (m *Manager) StartNow(hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return err
	}
	e.rec.Paused = false
	e.rec.FinishedSeeding = false
	e.dirty = true
	if e.state == StateStopped || e.state == StateError || e.state == StateQueued {
		m.startLocked(e)
	}
	m.saveLocked(e)
	m.notifyLocked()
	return nil
}

// kick runs a supervision pass soon, so a queued torrent need not wait a tick.
func (m *Manager) kick() {
	select {
	case m.kicks <- struct{}{}:
	default:
	}
}

// Stop stops a torrent (it keeps its data and place).
func (m *Manager) Stop(hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(hash)
	if err != nil {
		return err
	}
	m.stopLocked(e)
	m.notifyLocked()
	m.kick()
	return nil
}

// Remove forgets a torrent; with deleteData its downloaded files (and
// resume record) are deleted too.
func (m *Manager) Remove(hash string, deleteData bool) error {
	m.mu.Lock()
	e, err := m.get(hash)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	wait := m.closeLocked(e)
	delete(m.byHash, e.rec.InfoHash)
	rec, mi := e.rec, e.mi
	m.notifyLocked()
	m.mu.Unlock()
	wait()
	err = m.store.Delete(rec.InfoHash)
	if deleteData {
		err = errors.Join(err, m.deleteData(rec, mi))
	}
	m.kick()
	return err
}

// deleteData removes a torrent's files, empty folders it leaves, and the
// engine's resume record and metadata cache. Only paths the torrent names
// below its folder are touched (metainfo validated every component).
func (m *Manager) deleteData(rec Record, mi *metainfo.MetaInfo) error {
	if !within(m.dataDir, rec.Dir) {
		return fmt.Errorf("%w: %s", ErrOutside, rec.Dir)
	}
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(rec.Dir, ".shoal", rec.InfoHash+".*"))
	for _, p := range matches {
		rm(p)
	}
	if mi == nil {
		return errors.Join(errs...)
	}
	info := mi.Info
	dirs := map[string]bool{}
	for i, f := range info.Files {
		if f.Padding {
			continue
		}
		p := info.FilePath(rec.Dir, i)
		if !within(rec.Dir, p) || p == rec.Dir {
			continue
		}
		rm(p)
		for d := filepath.Dir(p); d != rec.Dir && within(rec.Dir, d); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	// Remove empty folders, deepest first; a folder holding other files stays.
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	for changed := true; changed; {
		changed = false
		for _, d := range ds {
			if os.Remove(d) == nil {
				changed = true
			}
		}
	}
	return errors.Join(errs...)
}

// Verify re-hashes a torrent's data: stop, delete the resume record, start.
func (m *Manager) Verify(hash string) error {
	m.mu.Lock()
	e, err := m.get(hash)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if e.mi == nil {
		m.mu.Unlock()
		return errors.New("verify: metadata not known yet")
	}
	wasPaused := e.rec.Paused
	wait := m.closeLocked(e)
	e.state = StateChecking
	m.mu.Unlock()
	wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	os.Remove(filepath.Join(e.rec.Dir, ".shoal", e.rec.InfoHash+".resume"))
	e.rec.Completed = time.Time{}
	e.dirty = true
	m.startLocked(e)
	if wasPaused {
		// Checking a paused torrent: it stops again when the check is done.
		gen := e.gen
		m.wg.Go(func() { m.pauseAfterCheck(e, gen) })
	}
	m.notifyLocked()
	return nil
}

func (m *Manager) pauseAfterCheck(e *entry, gen int) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.runCtx().Done():
			return
		case <-tick.C:
		}
		m.mu.Lock()
		if e.gen != gen {
			m.mu.Unlock()
			return
		}
		if e.state != StateChecking {
			m.foldCounters(e)
			m.stopLocked(e)
			m.notifyLocked()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

func defaultPrefs(n int) []FilePref {
	p := make([]FilePref, n)
	for i := range p {
		p[i].Wanted = true
	}
	return p
}

// hasHigh reports whether some wanted file has high priority.
func hasHigh(prefs []FilePref) bool {
	for _, p := range prefs {
		if p.Wanted && p.Priority > 0 {
			return true
		}
	}
	return false
}
