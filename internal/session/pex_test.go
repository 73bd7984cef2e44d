package session

import (
	"context"
	"testing"
	"time"
)

// TestPexIntroducesPeers: C knows only B, B knows A; B's ut_pex message
// tells C about A and C connects to it. (A torrent none of them has keeps
// the connections up: two seeds would drop each other.)
func TestPexIntroducesPeers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mi, _ := makeTorrent(t, t.TempDir(), 64<<10, 16<<10)
	var clients []*Client
	var torrents []*Torrent
	defer func() { stopAll(t, cancel, torrents...) }()
	for i := 0; i < 3; i++ {
		c := newTestClient(t)
		go c.Run(ctx)
		var peers []string
		if i > 0 {
			peers = []string{clients[i-1].Addr().String()} // B knows A, C knows B
		}
		tor, err := c.Add(ctx, mi, Options{Root: t.TempDir(), Peers: peers, NoTrackers: true})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		torrents = append(torrents, tor)
	}
	// C was told of B only; a second peer can only be A, reached through
	// PEX (C dialling A, or A dialling C: B tells both about each other).
	connectedToA := func() bool { return len(torrents[2].Peers()) == 2 }
	if connectedToA() {
		t.Fatal("C had two peers before any peer exchange")
	}
	deadline := time.Now().Add(15 * time.Second) // the first ut_pex goes out 5 s after start
	for !connectedToA() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !connectedToA() {
		t.Fatalf("C never learned A through B's ut_pex (C's peers: %v)", torrents[2].Peers())
	}
}
