package daemon

import (
	"slices"
	"testing"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/session"
)

func TestEnginePriorities(t *testing.T) {
	prefs := []FilePref{{Wanted: true, Priority: 1}, {Wanted: true}, {Wanted: true, Priority: -1}, {Wanted: false, Priority: 1}}
	want := []int{session.FileHigh, session.FileNormal, session.FileNormal, session.FileSkip}
	if got := enginePriorities(prefs); !slices.Equal(got, want) {
		t.Fatalf("enginePriorities = %v, want %v", got, want)
	}
}

// TestWantedFigures: three files over 10-byte pieces; the middle one
// shares its first and last pieces with its neighbours.
func TestWantedFigures(t *testing.T) {
	info := &metainfo.Info{PieceLength: 10, Files: []metainfo.File{
		{Path: []string{"a"}, Length: 15, Offset: 0},
		{Path: []string{"b"}, Length: 30, Offset: 15}, // pieces 1..4
		{Path: []string{"pad"}, Length: 5, Offset: 45, Padding: true},
		{Path: []string{"c"}, Length: 12, Offset: 50}, // pieces 5..6 (last piece 2 bytes)
	}}
	info.Pieces = make([]byte, 20*7)
	all := []FilePref{{Wanted: true}, {Wanted: true}, {Wanted: true}, {Wanted: true}}
	skipB := []FilePref{{Wanted: true}, {Wanted: false}, {Wanted: true}, {Wanted: true}}
	skipAC := []FilePref{{Wanted: false}, {Wanted: true}, {Wanted: true}, {Wanted: false}}
	none := make([]bool, 7)
	for _, c := range []struct {
		name       string
		prefs      []FilePref
		pieces     []bool
		size, left int64
	}{
		{"all wanted, nothing yet", all, none, 62, 62},
		{"skip b: pieces 0,1 and 5,6", skipB, none, 32, 32},
		{"skip b, piece 2 verified anyway", skipB, []bool{true, false, true, false, false, false, false}, 42, 22},
		{"skip a and c: pieces 1..4", skipAC, []bool{false, false, false, false, true, false, true}, 42, 30},
	} {
		size, left := wantedFigures(info, c.prefs, c.pieces)
		if size != c.size || left != c.left {
			t.Errorf("%s: sizeWhenDone %d, left %d; want %d, %d", c.name, size, left, c.size, c.left)
		}
	}
}
