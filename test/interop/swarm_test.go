package interop

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/test/clients"
)

// One shoal seeder and three shoal leechers started together: every leecher
// ends with identical data, and the leechers also trade pieces among
// themselves (their summed "uploaded N bytes" is above zero).
func TestShoalSwarm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "single")
	clients.StartShoalSeeder(t, f.torrent, f.parent)
	f.waitSeeders(t, 1)
	const n = 3
	leechers := make([]*clients.Peer, n)
	outs := make([]string, n)
	for i := range n {
		outs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("out%d", i))
		leechers[i] = clients.StartShoalLeecher(t, f.torrent, outs[i])
	}
	var total int64
	for i, l := range leechers {
		if err := l.WaitDoneOrStall(outs[i], transferTime, stallTime); err != nil {
			t.Fatalf("leecher %d: %v", i, err)
		}
		clients.RequireSameTree(t, f.path, filepath.Join(outs[i], f.info.Name))
		s, ok := clients.ParseSummary(l.Log())
		if !ok {
			t.Fatalf("leecher %d: no summary line (\"done: ... uploaded N bytes ...\") in its output", i)
		}
		t.Logf("leecher %d: uploaded %d bytes (%s)", i, s.UploadedBytes, s.Line)
		total += s.UploadedBytes
	}
	t.Logf("leechers uploaded %d bytes in total (content %d bytes)", total, f.info.TotalSize)
	if total <= 0 {
		t.Fatalf("the leechers uploaded nothing to each other")
	}
}
