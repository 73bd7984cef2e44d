package session

import (
	"fmt"

	"github.com/shoal-p2p/shoal/internal/picker"
)

// File priorities, as the daemon and the Transmission RPC use them.
const (
	FileSkip   = 0
	FileNormal = 1
	FileHigh   = 2
)

// applyFilePriorities maps per-file priorities onto pieces: a piece takes
// the highest priority of the files it touches (padding files ignored), so
// a piece shared with a wanted file is still fetched. Owner loop only.
func (t *Torrent) applyFilePriorities(prios []int) error {
	files := t.info.Files
	if len(prios) != len(files) {
		return fmt.Errorf("%d file priorities for %d files", len(prios), len(files))
	}
	pp := make([]picker.Priority, t.info.NumPieces())
	for i, f := range files {
		if f.Padding || f.Length == 0 {
			continue
		}
		p := prios[i]
		if p < FileSkip || p > FileHigh {
			return fmt.Errorf("file %d: priority %d out of range 0-2", i, p)
		}
		first := int(f.Offset / t.info.PieceLength)
		last := int((f.Offset + f.Length - 1) / t.info.PieceLength)
		for q := first; q <= last; q++ {
			pp[q] = max(pp[q], picker.Priority(p))
		}
	}
	for q, p := range pp {
		t.pick.SetPriority(q, p)
	}
	return nil
}

// SetFilePriorities changes which files are downloaded, and in what order,
// while the torrent runs. Done() fires once every wanted piece is verified.
func (t *Torrent) SetFilePriorities(prios []int) error {
	var err error
	if !t.do(func() {
		if err = t.applyFilePriorities(prios); err != nil {
			return
		}
		for _, ps := range t.peers {
			t.updateInterest(ps)
			t.requestMore(ps)
		}
		if t.pick.Complete() {
			t.markDone()
		}
		t.publish()
	}) {
		return fmt.Errorf("torrent stopped")
	}
	return err
}
