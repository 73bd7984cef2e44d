package hostile

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
	"github.com/shoal-p2p/shoal/test/clients"
)

// liar connects to a downloader, claims every piece and answers each request
// with random bytes of the right length. It returns how many blocks it
// served before the victim hung up, and whether it did within limit.
func liar(t *testing.T, addr string, f *fixture, limit time.Duration) (served int, dropped bool) {
	var a *attacker
	var err error
	for range 40 {
		if a, err = dialAttacker(addr, f.InfoHash, true); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("liar: %v", err)
		return 0, false
	}
	defer a.Close()
	a.sendMsg(wire.Message{ID: wire.HaveAll})
	a.sendMsg(wire.Message{ID: wire.Unchoke})
	end := time.After(limit)
	junk := detData(wire.MaxBlock, 1234)
	for {
		select {
		case m, ok := <-a.msgs:
			if !ok {
				return served, true
			}
			if m.ID == wire.Request && int(m.Length) <= len(junk) {
				a.send(wire.AppendMessage(nil, wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Payload: junk[:m.Length]}))
				served++
			}
		case <-end:
			return served, false
		}
	}
}

// TestHostilePeersLeecher attacks a `shoal get` (attackers dial its listen
// port) while it downloads from an honest shoal seeder: protocol violations
// end the connection, a peer serving data that fails the hash is dropped,
// memory stays bounded, and the download completes byte-identical.
func TestHostilePeersLeecher(t *testing.T) {
	t.Parallel()
	f := makeFixture(t, "leeched.bin", 6<<20+1000, 256<<10, "")
	seeder := clients.StartShoalSeeder(t, f.Torrent, f.DataDir, "--upload-limit", "700K")
	if err := clients.WaitListening(seeder.Addr.String(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	victim := clients.StartShoalLeecher(t, f.Torrent, out, "--peer", seeder.Addr.String())
	addr := victim.Addr.String()
	if err := clients.WaitListening(addr, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	type liarResult struct {
		served  int
		dropped bool
	}
	lr := make(chan liarResult, 1)
	go func() {
		s, d := liar(t, addr, f, 60*time.Second)
		lr <- liarResult{s, d}
	}()

	attacks := append(wireAttacks(), attack{"unrequested piece data", true, false, func(a *attacker, f *fixture) {
		a.sendMsg(wire.Message{ID: wire.Piece, Index: uint32(f.NumPieces() - 1), Begin: 0, Payload: detData(16384, 5)})
	}})
	lines, dropped := runAttacks(t, addr, f, attacks)
	before := rssKiB(victim.PID())
	peak, _ := flood(t, addr, f, victim.PID(), 200, 4)
	t.Logf("leecher RSS: %d KiB before the flood, peak %d KiB", before, peak)
	if victim.Exited() { // finished already: the flood measured nothing useful
		t.Logf("leecher finished before the flood ended")
	} else if peak == 0 || peak > rssCapKiB {
		t.Errorf("leecher RSS peaked at %d KiB under the flood, cap %d KiB", peak, rssCapKiB)
	}

	if err := victim.WaitDone(120 * time.Second); err != nil {
		t.Fatalf("leecher did not finish while under attack: %v", err)
	}
	if err := sameFile(filepath.Join(out, f.Name), f.Data); err != nil {
		t.Fatal(err)
	}
	res := <-lr
	if !res.dropped && res.served > 0 {
		t.Errorf("a peer serving %d blocks of garbage was never dropped", res.served)
	}
	lines = append(lines, fmt.Sprintf("%-38s served %d bad blocks, dropped=%v", "liar (data failing the hash)", res.served, res.dropped))
	for _, l := range lines {
		t.Log("leecher: " + l)
	}
	record(t, "peer attacks on shoal get", len(attacks)+1,
		fmt.Sprintf("%d dropped (liar after %d bad blocks), rest tolerated; download byte-identical", dropped+map[bool]int{true: 1}[res.dropped], res.served))
	record(t, "connection flood on shoal get", 200+4,
		fmt.Sprintf("RSS %d→peak %d KiB (cap %d)", before, peak, rssCapKiB))
}
