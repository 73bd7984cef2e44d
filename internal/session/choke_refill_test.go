package session

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// unchokes reads p's messages until the connection ends and reports each
// Unchoke on the returned channel.
func unchokes(p *rawHP) <-chan struct{} {
	ch := make(chan struct{}, 16)
	go func() {
		for {
			m, err := p.r.Read()
			if err != nil {
				return
			}
			if m.ID == wire.Unchoke {
				ch <- struct{}{}
			}
		}
	}()
	return ch
}

func within(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// TestSeedRefillsFreedSlot: a seed with one regular slot (plus the
// optimistic one) serves two of three interested peers. When one of the
// two disconnects (a finished peer leaves without "not interested"), the
// third is unchoked at once, not at the next 10 s round.
func TestSeedRefillsFreedSlot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	mi, _ := makeTorrent(t, dir, 64<<10, 16<<10)
	s, err := NewClient(Config{Listen: "127.0.0.1:0", SeedSlots: 1})
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	tor, err := s.Add(ctx, mi, Options{Root: dir, NoTrackers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopAll(t, cancel, tor)
	waitDone(t, tor, 10*time.Second)
	var ps []*rawHP
	var evs []<-chan struct{}
	for i := range 3 {
		p := dialRawHP(t, s.Addr().String(), mi.InfoHash, byte('a'+i), 0, 50001+i)
		if _, err := p.nc.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Interested})); err != nil {
			t.Fatal(err)
		}
		p.nc.SetDeadline(time.Time{})
		ps = append(ps, p)
		evs = append(evs, unchokes(p))
	}
	var unchoked []*rawHP
	var waiting <-chan struct{}
	for i, p := range ps {
		if within(evs[i], 2*time.Second) {
			unchoked = append(unchoked, p)
		} else {
			waiting = evs[i]
		}
	}
	if len(unchoked) != 2 || waiting == nil {
		t.Fatalf("%d of 3 interested peers unchoked, want 2 (one regular slot + the optimistic one)", len(unchoked))
	}
	unchoked[0].nc.Close()
	if !within(waiting, 3*time.Second) {
		t.Fatal("the waiting peer was not unchoked when a slot holder left")
	}
}
