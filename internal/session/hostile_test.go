package session

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// liar is a scripted peer that claims every piece and answers every request
// with garbage. It counts the connections it accepted.
type liar struct {
	ln    net.Listener
	conns atomic.Int32
}

func startLiar(t *testing.T, mi *metainfo.MetaInfo) *liar {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &liar{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			l.conns.Add(1)
			go l.serve(nc, mi)
		}
	}()
	return l
}

func (l *liar) serve(nc net.Conn, mi *metainfo.MetaInfo) {
	defer nc.Close()
	if _, err := wire.ReadHandshake(nc); err != nil {
		return
	}
	hs := wire.Handshake{InfoHash: mi.InfoHash, PeerID: NewPeerID()}
	hs.SetFast()
	var out []byte
	out = hs.Append(out)
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveAll})
	out = wire.AppendMessage(out, wire.Message{ID: wire.Unchoke})
	if _, err := nc.Write(out); err != nil {
		return
	}
	r := wire.NewReader(nc, 1<<20)
	junk := bytes.Repeat([]byte{0xAB}, 16<<10)
	for {
		m, err := r.Read()
		if err != nil {
			return
		}
		if m.ID != wire.Request {
			continue
		}
		out = wire.AppendPieceHeader(out[:0], m.Index, m.Begin, int(m.Length))
		out = append(out, junk[:m.Length]...)
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// liarBesideSeed downloads a torrent of size bytes in pieces of pieceLen
// from a liar and an honest seeder limited to 256 KiB/s, the liar listed
// first: it answers at once, so it is certain to be asked for blocks. It
// fails the test unless the download completes intact.
func liarBesideSeed(t *testing.T, size int, pieceLen int64) (lt *Torrent, lr *liar, seeder *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	seedDir := t.TempDir()
	mi, data := makeTorrent(t, seedDir, size, pieceLen)
	lr = startLiar(t, mi)
	seeder, err := NewClient(Config{Listen: "127.0.0.1:0", UploadRate: 256 << 10})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go seeder.Run(ctx)
	st, err := seeder.Add(ctx, mi, Options{Root: seedDir})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := newTestClient(t)
	go c.Run(ctx)
	dir := t.TempDir()
	lt, err = c.Add(ctx, mi, Options{Root: dir, Peers: []string{lr.ln.Addr().String(), seeder.Addr().String()}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, cancel, st, lt) })
	waitDone(t, lt, 60*time.Second)
	got, err := os.ReadFile(filepath.Join(dir, "content.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (err %v)", err)
	}
	return lt, lr, seeder
}

// TestLyingPeerIsBanned: a peer that sends data failing the piece hashes is
// dropped and banned; the download still completes, correctly, from the
// honest seeder.
func TestLyingPeerIsBanned(t *testing.T) {
	lt, lr, _ := liarBesideSeed(t, 1<<20, 16<<10)
	time.Sleep(1100 * time.Millisecond)
	s := lt.Stats()
	if s.HashFails == 0 {
		t.Fatal("no hash failure was recorded: the liar's data was never requested?")
	}
	var banned bool
	lt.do(func() {
		for a := range lt.banned {
			if a.String() == lr.ln.Addr().String() {
				banned = true
			}
		}
	})
	if !banned {
		t.Fatalf("liar not banned after %d hash failures", s.HashFails)
	}
	if n := lr.conns.Load(); n != 1 {
		t.Fatalf("liar was connected %d times; a banned peer must not be dialled again", n)
	}
	t.Logf("hash failures %d, liar banned, download intact", s.HashFails)
}

// TestLiarSharingPiecesWithSeed: pieces of four blocks, some sent partly by
// a liar and partly by the honest seeder, fail their hash with two senders
// each. Only the liar is banned, once good copies show whose blocks were
// wrong; the seeder keeps serving and the download completes. (Striking
// every sender of a failed piece banned the seeder after three such pieces
// and the download stalled; TestHostilePeersLeecher met it.)
func TestLiarSharingPiecesWithSeed(t *testing.T) {
	lt, lr, seeder := liarBesideSeed(t, 2<<20, 64<<10)
	var liarBanned, seedBanned bool
	lt.do(func() {
		liarBanned = lt.banned[netip.MustParseAddrPort(lr.ln.Addr().String())]
		seedBanned = lt.banned[netip.MustParseAddrPort(seeder.Addr().String())]
	})
	if s := lt.Stats(); s.HashFails == 0 || !liarBanned || seedBanned {
		t.Fatalf("hash failures %d, liar banned %v, seeder banned %v", s.HashFails, liarBanned, seedBanned)
	}
}
