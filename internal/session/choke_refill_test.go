package session

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/metainfo"
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

// oneSlotSeed starts a client seeding a fresh torrent of size bytes in
// 16 KiB pieces with one regular seeding slot (plus the optimistic one); it
// stops when the test ends.
func oneSlotSeed(t *testing.T, size int) (*Client, *metainfo.MetaInfo) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	mi, _ := makeTorrent(t, dir, size, 16<<10)
	s, err := NewClient(Config{Listen: "127.0.0.1:0", SeedSlots: 1})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go s.Run(ctx)
	tor, err := s.Add(ctx, mi, Options{Root: dir, NoTrackers: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, cancel, tor) })
	waitDone(t, tor, 10*time.Second)
	return s, mi
}

// TestSeedRefillsFreedSlot: a seed with one regular slot (plus the
// optimistic one) serves two of three interested peers. When one of the
// two disconnects (a finished peer leaves without "not interested"), the
// third is unchoked at once, not at the next 10 s round.
func TestSeedRefillsFreedSlot(t *testing.T) {
	s, mi := oneSlotSeed(t, 64<<10)
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

// chokeState follows the seed's Choke/Unchoke messages to p until the
// connection ends.
func chokeState(p *rawHP) *atomic.Bool {
	var unchoked atomic.Bool
	go func() {
		for {
			m, err := p.r.Read()
			if err != nil {
				return
			}
			switch m.ID {
			case wire.Unchoke:
				unchoked.Store(true)
			case wire.Choke:
				unchoked.Store(false)
			}
		}
	}()
	return &unchoked
}

func eventually(d time.Duration, f func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}

// TestSeedServesLeastCompletePeers: a seed with one regular slot (plus the
// optimistic one) and three interested peers holding 80 %, 0 % and 50 % of
// the torrent gives the regular slot to the one with nothing. When that one
// reports 90 %, the next seeding round (every 3 s) moves the slot to the
// peer at 50 %. With the first peer to arrive keeping the regular slot (as
// ranking by upload rate did: nobody downloads here), the 0 % and the 50 %
// peer could not both be unchoked, one slot being the optimistic one.
func TestSeedServesLeastCompletePeers(t *testing.T) {
	const pieces = 100
	s, mi := oneSlotSeed(t, pieces*16<<10)

	holding := []int{80, 0, 50}
	var ps []*rawHP
	var states []*atomic.Bool
	for i, n := range holding {
		p := dialRawHP(t, s.Addr().String(), mi.InfoHash, byte('a'+i), 0, 50011+i)
		bf := bitfield.New(pieces)
		for k := range n {
			bf.Set(k)
		}
		msgs := wire.AppendMessage(nil, wire.Message{ID: wire.Bitfield, Payload: bf.Bytes()})
		msgs = wire.AppendMessage(msgs, wire.Message{ID: wire.Interested})
		if _, err := p.nc.Write(msgs); err != nil {
			t.Fatal(err)
		}
		p.nc.SetDeadline(time.Time{})
		ps = append(ps, p)
		states = append(states, chokeState(p))
		time.Sleep(100 * time.Millisecond) // arrive in this order: the 80 % peer takes the free slot first
	}
	if !eventually(5*time.Second, states[1].Load) {
		t.Fatal("the peer holding nothing was not unchoked within 5 s")
	}
	var haves []byte
	for k := range 90 {
		haves = wire.AppendMessage(haves, wire.Message{ID: wire.Have, Index: uint32(k)})
	}
	if _, err := ps[1].nc.Write(haves); err != nil {
		t.Fatal(err)
	}
	if !eventually(8*time.Second, states[2].Load) {
		t.Fatal("the peer at 50 % was not unchoked within 8 s of the other reaching 90 %")
	}
}
