package daemon

import (
	"fmt"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

// File choices reach the engine as one priority per file
// (session.FileSkip, FileNormal, FileHigh). The daemon stores Transmission's
// three levels (-1 low, 0 normal, 1 high) so that the RPC reads back what a
// client set, but the engine has no "low": low is fetched as normal.
//
// Progress follows Transmission: sizeWhenDone counts the wanted pieces (a
// piece is wanted when any wanted file touches it, as the engine decides)
// plus the verified bytes of the others; leftUntilDone is the wanted pieces
// not yet verified; a torrent whose wanted pieces are all verified is done
// and seeds what it has.

// enginePriorities maps stored preferences to the engine's values.
func enginePriorities(prefs []FilePref) []int {
	out := make([]int, len(prefs))
	for i, p := range prefs {
		switch {
		case !p.Wanted:
			out[i] = session.FileSkip
		case p.Priority > 0:
			out[i] = session.FileHigh
		default:
			out[i] = session.FileNormal
		}
	}
	return out
}

// allWanted reports whether no file is skipped.
func allWanted(prefs []FilePref) bool {
	for _, p := range prefs {
		if !p.Wanted {
			return false
		}
	}
	return true
}

// wantedPieces marks the pieces touched by a wanted file (padding and empty
// files ignored). Files beyond prefs count as wanted.
func wantedPieces(info *metainfo.Info, prefs []FilePref) []bool {
	out := make([]bool, info.NumPieces())
	if info.PieceLength <= 0 {
		return out
	}
	for i, f := range info.Files {
		if f.Padding || f.Length <= 0 || (i < len(prefs) && !prefs[i].Wanted) {
			continue
		}
		first := int(f.Offset / info.PieceLength)
		last := int((f.Offset + f.Length - 1) / info.PieceLength)
		for q := first; q <= last && q < len(out); q++ {
			out[q] = true
		}
	}
	return out
}

// wantedFigures returns Transmission's sizeWhenDone and leftUntilDone from
// a piece map (pieces[i] = verified).
func wantedFigures(info *metainfo.Info, prefs []FilePref, pieces []bool) (sizeWhenDone, left int64) {
	for q, w := range wantedPieces(info, prefs) {
		have := q < len(pieces) && pieces[q]
		n := info.PieceSize(q)
		switch {
		case w && !have:
			sizeWhenDone += n
			left += n
		case w || have:
			sizeWhenDone += n
		}
	}
	return sizeWhenDone, left
}

// wantedLocked returns a torrent's sizeWhenDone and leftUntilDone given its
// total size and verified bytes. Exact while the piece map is known (a
// running torrent, or one stopped in this process); otherwise the figures
// saved in the record, or an estimate from the file sizes.
func (m *Manager) wantedLocked(e *entry, size, have int64) (int64, int64) {
	if e.mi == nil || allWanted(e.rec.Files) {
		return size, max(size-have, 0)
	}
	info := e.mi.Info
	if len(e.pieces) == info.NumPieces() {
		return wantedFigures(info, e.rec.Files, e.pieces)
	}
	if e.rec.WantedSize > 0 && e.rec.WantedFor == prefsKey(e.rec.Files) {
		return e.rec.WantedSize, e.rec.WantedLeft
	}
	var all []bool
	if have >= size && size > 0 { // complete: every piece is there
		all = make([]bool, info.NumPieces())
		for i := range all {
			all[i] = true
		}
	}
	ws, wl := wantedFigures(info, e.rec.Files, all)
	return ws, max(wl-have, 0)
}

// prefsKey summarises the file choices the saved wanted figures were
// computed for (one letter per file).
func prefsKey(prefs []FilePref) string {
	b := make([]byte, len(prefs))
	for i, p := range prefs {
		b[i] = "ny"[btoi(p.Wanted)]
	}
	return string(b)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// refreshPieces fetches the piece maps of running torrents that skip some
// files (the engine's Stats count every piece) and saves the wanted
// figures; engine calls happen without holding mu.
func (m *Manager) refreshPieces() {
	type job struct {
		e *entry
		t *session.Torrent
	}
	var jobs []job
	m.mu.Lock()
	for _, e := range m.byHash {
		if e.t != nil && e.mi != nil && !allWanted(e.rec.Files) {
			jobs = append(jobs, job{e, e.t})
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		pm := j.t.PieceMap()
		m.mu.Lock()
		if j.e.t == j.t && pm != nil {
			m.setPiecesLocked(j.e, pm)
		}
		m.mu.Unlock()
	}
}

// setPiecesLocked keeps a piece map and the wanted figures it gives.
func (m *Manager) setPiecesLocked(e *entry, pm []bool) {
	e.pieces = pm
	if e.mi == nil {
		return
	}
	ws, wl := wantedFigures(e.mi.Info, e.rec.Files, pm)
	if key := prefsKey(e.rec.Files); ws != e.rec.WantedSize || wl != e.rec.WantedLeft || key != e.rec.WantedFor {
		e.rec.WantedSize, e.rec.WantedLeft, e.rec.WantedFor = ws, wl, key
		e.dirty = true
	}
}

// applyLive gives a running torrent its stored file priorities and rate
// limits. Calls are serialised by applyMu so that the engine ends with the
// latest choices; the engine is called without holding mu.
func (m *Manager) applyLive(hash string) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	e, err := m.get(hash)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	t := e.t
	var prios []int
	if e.mi != nil && len(e.rec.Files) == len(e.mi.Info.Files) {
		prios = enginePriorities(e.rec.Files)
	}
	up, down := e.rec.UpLimit, e.rec.DownLimit
	partial := !allWanted(e.rec.Files)
	m.mu.Unlock()
	if t == nil {
		return nil // applied at the next start
	}
	t.SetRates(up, down)
	if prios != nil {
		if err := t.SetFilePriorities(prios); err != nil {
			return fmt.Errorf("file priorities: %w", err)
		}
	}
	var pm []bool
	if partial {
		pm = t.PieceMap()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.t == t {
		if pm != nil {
			m.setPiecesLocked(e, pm)
		} else if !partial {
			e.pieces = nil
		}
		m.notifyLocked()
	}
	m.kick() // done-ness may have changed
	return nil
}
