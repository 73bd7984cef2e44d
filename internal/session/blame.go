package session

import (
	"crypto/sha1"
	"net/netip"

	"github.com/shoal-p2p/shoal/internal/picker"
)

// Smart banning. A piece that fails its hash with blocks from one peer
// convicts that peer. With blocks from several, one liar would take honest
// peers down with it (a seed that shared three pieces with a peer sending
// garbage was banned, and the download stalled), so nobody is struck then:
// the loop remembers who sent each block and a digest of what they sent,
// and when a later copy of the piece passes, the peers whose blocks differ
// from the good ones are banned; the others are cleared.

// maxBlameAttempts bounds the failed attempts remembered per piece.
const maxBlameAttempts = 4

// blockBlame is one block of a failed attempt: who sent it and what.
type blockBlame struct {
	block  int
	peer   picker.PeerID
	id     [20]byte       // the sender's peer ID, to ban it after it left
	addr   netip.AddrPort // and its listen address
	digest [sha1.Size]byte
}

// blockDigests returns the SHA-1 of every size-byte block of data.
func blockDigests(data []byte, size int) [][sha1.Size]byte {
	out := make([][sha1.Size]byte, 0, (len(data)+size-1)/size)
	for off := 0; off < len(data); off += size {
		out = append(out, sha1.Sum(data[off:min(off+size, len(data))]))
	}
	return out
}

// wantBlockDigests reports whether the hash workers should return block
// digests for piece even when it passes (a failed copy of it awaits
// comparison). Safe from any goroutine.
func (t *Torrent) wantBlockDigests(piece int) bool {
	t.blameMu.Lock()
	defer t.blameMu.Unlock()
	return t.blameWant[piece]
}

// remember records a failed multi-peer attempt of piece.
func (t *Torrent) remember(piece int, suppliers []picker.PeerID, digests [][sha1.Size]byte) {
	if len(suppliers) != len(digests) || len(t.blame[piece]) >= maxBlameAttempts*len(suppliers) {
		return
	}
	byPID := make(map[picker.PeerID]*peerState, len(t.peers))
	for _, ps := range t.peers {
		byPID[ps.pid] = ps
	}
	for i, pid := range suppliers {
		b := blockBlame{block: i, peer: pid, digest: digests[i]}
		if ps := byPID[pid]; ps != nil {
			b.id, b.addr = ps.conn.Remote.PeerID, ps.listenAddr
		}
		t.blame[piece] = append(t.blame[piece], b)
	}
	t.blameMu.Lock()
	t.blameWant[piece] = true
	t.blameMu.Unlock()
}

// ban keeps a peer out for the torrent's life: its peer ID is refused on
// connect and its listen address is never dialled again. Zero values are
// skipped (a peer that left before we learned them).
func (t *Torrent) ban(id [20]byte, addr netip.AddrPort) {
	if id != ([20]byte{}) {
		t.bannedIDs[id] = true
	}
	if addr.IsValid() {
		t.banned[addr] = true
	}
}

// culprits returns one entry per peer that sent a block differing from the
// good copy's digest of that block.
func culprits(list []blockBlame, good [][sha1.Size]byte) []blockBlame {
	var out []blockBlame
	seen := map[picker.PeerID]bool{}
	for _, b := range list {
		if b.block < len(good) && b.digest != good[b.block] && !seen[b.peer] {
			seen[b.peer] = true
			out = append(out, b)
		}
	}
	return out
}

// settle compares the failed attempts of a piece that has now passed with
// its good blocks and bans whoever sent a block that differs.
func (t *Torrent) settle(piece int, good [][sha1.Size]byte) {
	list, ok := t.blame[piece]
	if !ok {
		return
	}
	delete(t.blame, piece)
	t.blameMu.Lock()
	delete(t.blameWant, piece)
	t.blameMu.Unlock()
	if len(good) == 0 {
		return // no digests to compare with (cannot happen: the worker was asked)
	}
	guilty := culprits(list, good)
	for _, b := range guilty {
		t.ban(b.id, b.addr)
		for _, ps := range t.peers {
			if ps.pid == b.peer {
				t.drop(ps, "sent data that failed the hash of piece %d", piece)
				break
			}
		}
	}
	if len(guilty) > 0 {
		t.log.Warn("peers sent corrupt blocks; banned", "piece", piece, "peers", len(guilty))
	}
}
