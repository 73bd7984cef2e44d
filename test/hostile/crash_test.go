package hostile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/storage"
	"github.com/shoal-p2p/shoal/test/clients"
)

var downloadedRe = regexp.MustCompile(`done: .*downloaded (\d+) bytes`)

// checkResume loads the resume record shoal left in out and checks that
// every piece it calls complete is on disk with the right hash. It returns
// the record's have-set (empty when there is no record yet).
func checkResume(t *testing.T, f *fixture, info *metainfo.Info, out string) bitfield.Bitfield {
	t.Helper()
	path := filepath.Join(out, ".shoal", fmt.Sprintf("%x.resume", f.InfoHash))
	if _, err := os.Stat(path); err != nil {
		return bitfield.New(info.NumPieces())
	}
	have, _, err := storage.LoadResume(path, info, out)
	if err != nil {
		t.Fatalf("resume record unreadable after kill -9: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(out, f.Name))
	for i := 0; i < info.NumPieces(); i++ {
		if !have.Has(i) {
			continue
		}
		lo, hi := i*f.PieceLen, min((i+1)*f.PieceLen, len(f.Data))
		if len(data) < hi || string(data[lo:hi]) != string(f.Data[lo:hi]) {
			t.Fatalf("piece %d is marked complete in the resume record but its data on disk is wrong", i)
		}
	}
	return have
}

// TestCrashLeecher kills `shoal get` with SIGKILL at random times, again and
// again, while it downloads from a rate-limited seeder. After every kill
// the resume record only lists pieces whose data is on disk, it never loses
// a piece it listed before, and the final run downloads no more than the
// pieces the record did not list; the result is byte-identical.
func TestCrashLeecher(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("random seed %d", seed)
	f := makeFixture(t, "crash.bin", 12<<20+333, 64<<10, "")
	mi, err := metainfo.Load(f.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	seeder := clients.StartShoalSeeder(t, f.Torrent, f.DataDir, "--upload-limit", "300K")
	if err := clients.WaitListening(seeder.Addr.String(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	prev := bitfield.New(mi.Info.NumPieces())
	kills := 0
	for i := 0; i < 12; i++ {
		p := clients.StartShoalLeecher(t, f.Torrent, out, "--peer", seeder.Addr.String())
		wait := time.Duration(200+rng.IntN(1300)) * time.Millisecond
		if i == 3 {
			// one run outlives the engine's periodic resume save (20 s), so
			// later kills exercise a real record
			wait = time.Duration(21000+rng.IntN(2000)) * time.Millisecond
		}
		time.Sleep(wait)
		if p.Exited() {
			break // finished early: nothing left to kill
		}
		p.Kill()
		kills++
		have := checkResume(t, f, mi.Info, out)
		for k := 0; k < prev.Len(); k++ {
			if prev.Has(k) && !have.Has(k) {
				t.Fatalf("kill %d: piece %d was in the resume record and is gone", kills, k)
			}
		}
		prev = have
		t.Logf("kill %d: %d/%d pieces in the resume record", kills, have.Count(), have.Len())
	}
	if kills < 10 {
		t.Errorf("only %d kills happened before the download finished; slow the seeder down", kills)
	}
	// Every piece whose data is already right on disk is found by the
	// restart (from the record, or by hashing what the record does not
	// vouch for), so only the others may be downloaded again.
	missing, onDisk := int64(0), 0
	data, _ := os.ReadFile(filepath.Join(out, f.Name))
	for k := 0; k < prev.Len(); k++ {
		lo, hi := k*f.PieceLen, min((k+1)*f.PieceLen, len(f.Data))
		if len(data) >= hi && string(data[lo:hi]) == string(f.Data[lo:hi]) {
			onDisk++
			continue
		}
		missing += mi.Info.PieceSize(k)
	}
	t.Logf("before the final run: %d pieces in the record, %d right on disk, %d bytes missing", prev.Count(), onDisk, missing)
	final := clients.StartShoalLeecher(t, f.Torrent, out, "--peer", seeder.Addr.String())
	if err := final.WaitDone(90 * time.Second); err != nil {
		t.Fatalf("final run: %v\n%s", err, final.Log())
	}
	m := downloadedRe.FindStringSubmatch(final.Log())
	if m == nil {
		t.Fatalf("final run printed no downloaded byte count:\n%s", final.Log())
	}
	got, _ := strconv.ParseInt(m[1], 10, 64)
	if got > missing {
		t.Errorf("final run downloaded %d bytes but only %d were missing on disk: verified pieces fetched again", got, missing)
	}
	if err := sameFile(filepath.Join(out, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	record(t, "kill -9 of shoal get", kills,
		fmt.Sprintf("record ⊆ verified data on disk, never shrank (max %d pcs); final run fetched %d B, %d B were missing; identical", prev.Count(), got, missing))
}

// TestCrashSeeder kills `shoal seed` with SIGKILL at random points
// (during its start-up check and while serving) while a leecher downloads
// from it; every restart serves again and the leecher completes.
func TestCrashSeeder(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	t.Logf("random seed %d", seed)
	f := makeFixture(t, "crashseed.bin", 6<<20+5, 64<<10, "")
	port := clients.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start := func() *clients.Proc {
		return clients.StartProc(t, "shoal-seed", "", nil, clients.ShoalBinary(t), "seed", "--listen", addr,
			"-d", f.DataDir, "--no-dht", "--upload-limit", "1M", f.Torrent)
	}
	out := filepath.Join(t.TempDir(), "out")
	leecher := clients.StartShoalLeecher(t, f.Torrent, out, "--peer", addr)
	restarts := 0
	for i := 0; i < 10; i++ {
		p := start()
		// every restart must serve: a handshake for the torrent succeeds
		served := waitFor(20*time.Second, func() bool {
			a, err := dialAttacker(addr, f.InfoHash, true)
			if err != nil {
				return false
			}
			a.Close()
			return true
		})
		if !served {
			t.Fatalf("restart %d: seeder does not accept the torrent's peers\n%s", i, p.Log())
		}
		time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		p.Kill()
		restarts++
		if err := sameFile(filepath.Join(f.DataDir, f.Name), f.Data); err != nil {
			t.Fatalf("seeder changed its data: %v", err)
		}
	}
	final := start()
	_ = final
	if err := leecher.WaitDone(120 * time.Second); err != nil {
		t.Fatalf("leecher did not complete after %d seeder kills: %v\n%s", restarts, err, leecher.Log())
	}
	if err := sameFile(filepath.Join(out, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	record(t, "kill -9 of shoal seed", restarts,
		"every restart accepted peers again; data untouched; leecher completed identical")
}
