package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestCompareTrees(t *testing.T) {
	dir := t.TempDir()
	a := MakeMulti(t, dir, "a")
	b := MakeMulti(t, dir, "b")
	if err := CompareTrees(a, b); err != nil {
		t.Fatalf("identical trees differ: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(root string)
		want   string
		opts   []CompareOption
	}{
		{"flipped byte", func(r string) {
			p := filepath.Join(r, "sub/deeper/c.bin")
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			buf := []byte{0}
			f.ReadAt(buf, 3<<20+5)
			buf[0] ^= 1
			f.WriteAt(buf, 3<<20+5)
			f.Close()
		}, "differs at byte 3145733", nil},
		{"truncated", func(r string) { os.Truncate(filepath.Join(r, "a.bin"), 10) }, "size 10", nil},
		{"missing", func(r string) { os.Remove(filepath.Join(r, "sub/x y (spaces).bin")) }, "missing", nil},
		{"missing empty strict", func(r string) { os.Remove(filepath.Join(r, "empty.txt")) }, "missing \"empty.txt\"", nil},
		{"missing empty allowed", func(r string) { os.Remove(filepath.Join(r, "empty.txt")) }, "", []CompareOption{AllowMissingEmpty}},
		{"extra", func(r string) { os.WriteFile(filepath.Join(r, "junk"), nil, 0o644) }, "extra file", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := MakeMulti(t, dir, "c"+string(rune('0'+i)))
			tc.mutate(c)
			err := CompareTrees(a, c, tc.opts...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected difference: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestDeterministicData(t *testing.T) {
	dir := t.TempDir()
	p1 := MakeSingle(t, filepath.Join(dir, "1"), "f.bin", 1<<20+3)
	p2 := MakeSingle(t, filepath.Join(dir, "2"), "f.bin", 1<<20+3)
	RequireSameTree(t, p1, p2)
	p3 := MakeSingle(t, filepath.Join(dir, "3"), "g.bin", 1<<20+3)
	if CompareTrees(p1, p3) == nil {
		t.Fatal("different names gave the same content")
	}
}

func TestParseSummary(t *testing.T) {
	log := "time=x level=INFO msg=progress\n" +
		"done: my file.bin 32.0MiB in 1.52s, down 21.0MiB/s, up 3.1MiB/s, uploaded 4718592 bytes, peers 3\n"
	s, ok := ParseSummary(log)
	if !ok || s.Name != "my file.bin" || s.Size != "32.0MiB" || s.UploadedBytes != 4718592 || s.Peers != 3 || s.Seconds != 1.52 {
		t.Fatalf("ParseSummary = %+v, %v", s, ok)
	}
	if s, ok := ParseSummary("x done: a 1 in 2s, uploaded 7 bytes\n"); !ok || s.UploadedBytes != 7 {
		t.Fatalf("loose ParseSummary = %+v, %v", s, ok)
	}
	if _, ok := ParseSummary("nothing here"); ok {
		t.Fatal("ParseSummary matched a log without a summary")
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if p < portLo || p >= portHi || seen[p] {
			t.Fatalf("bad or repeated port %d", p)
		}
		seen[p] = true
	}
}

// TestReadTorrentMatchesOthers checks this package's torrent reader against
// mktorrent's output as read by libtorrent and transmission-show.
func TestReadTorrentMatchesOthers(t *testing.T) {
	Require(t, Mktorrent, Libtorrent, TransmissionShow)
	dir := t.TempDir()
	root := MakeMulti(t, dir, "tree")
	tor := filepath.Join(dir, "tree.torrent")
	MakeTorrent(t, root, tor, TorrentOpts{Trackers: []string{"http://127.0.0.1:1/announce"}, PieceLength: 64 << 10, Private: true})
	got, err := ReadTorrent(tor)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range MultiLayout {
		total += f.Size
	}
	if got.Name != "tree" || got.NumFiles != len(MultiLayout) || got.TotalSize != total || !got.Private || got.PieceLength != 64<<10 {
		t.Fatalf("ReadTorrent = %+v", got)
	}
	lt, err := LibtorrentInfo(t, tor)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := TransmissionShowInfo(t, tor)
	if err != nil {
		t.Fatal(err)
	}
	if lt.InfoHash != got.InfoHash || tr.InfoHash != got.InfoHash || !tr.Private || !lt.Private {
		t.Fatalf("info-hash: ours %s, libtorrent %+v, transmission %+v", got.InfoHash, lt, tr)
	}
}

// pair runs one transfer between two real clients through opentracker and
// compares the result byte for byte. It proves the harness itself.
func pair(t *testing.T, multi bool, leechFirst bool,
	seed func(t testing.TB, torrent, parent string) *Peer,
	get func(t testing.TB, torrent, out string) *Peer, opts ...CompareOption) {
	src := t.TempDir()
	var path string
	if multi {
		path = MakeMulti(t, src, "multi tree")
	} else {
		path = MakeSingle(t, src, "single.bin", 8<<20+12345)
	}
	tor := filepath.Join(t.TempDir(), "x.torrent")
	tr := StartOpentracker(t)
	MakeTorrent(t, path, tor, TorrentOpts{Trackers: []string{tr.AnnounceURL}, PieceLength: 64 << 10})
	info, err := ReadTorrent(tor)
	if err != nil {
		t.Fatal(err)
	}
	tr.Allow(t, info.InfoHash)
	out := filepath.Join(t.TempDir(), "out")
	var l *Peer
	if leechFirst {
		l = get(t, tor, out)
		WaitLeechers(t, tr.AnnounceURL, info.InfoHash, 1, 30*time.Second)
	}
	seed(t, tor, src)
	WaitSeeders(t, tr.AnnounceURL, info.InfoHash, 1, time.Minute)
	if !leechFirst {
		l = get(t, tor, out)
	}
	if err := l.WaitDone(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	RequireSameTree(t, path, filepath.Join(out, info.Name), opts...)
}

func ltSeed(t testing.TB, tor, parent string) *Peer { return StartLibtorrentSeeder(t, tor, parent) }

func TestHarnessLibtorrentToAria2(t *testing.T) {
	t.Parallel()
	Require(t, Opentracker, Mktorrent, Libtorrent, Aria2)
	pair(t, true, false, ltSeed, func(t testing.TB, tor, out string) *Peer { return StartAria2Leecher(t, tor, out) })
}

func TestHarnessTransmissionToLibtorrent(t *testing.T) {
	t.Parallel()
	Require(t, Opentracker, Mktorrent, Libtorrent, TransmissionDaemon)
	pair(t, false, false, StartTransmissionSeeder, func(t testing.TB, tor, out string) *Peer { return StartLibtorrentLeecher(t, tor, out) })
}

func TestHarnessLibtorrentToTransmission(t *testing.T) {
	t.Parallel()
	Require(t, Opentracker, Mktorrent, Libtorrent, TransmissionDaemon)
	pair(t, true, true, ltSeed, StartTransmissionLeecher, AllowMissingEmpty)
}

func TestHarnessAria2ToLibtorrent(t *testing.T) {
	t.Parallel()
	Require(t, Opentracker, Mktorrent, Libtorrent, Aria2)
	pair(t, false, false, StartAria2Seeder, func(t testing.TB, tor, out string) *Peer { return StartLibtorrentLeecher(t, tor, out) })
}
