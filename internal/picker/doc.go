// Package picker is shoal's pure piece and block selection logic.
//
// The session feeds it events (a peer connected, has a piece, sent its
// bitfield, choked us, delivered a block, went away; a piece was verified or
// failed its hash check) and asks it which blocks to request next from a
// peer. Peers are opaque PeerID values chosen by the caller. The package does
// no I/O, reads no clock and uses only the *rand.Rand it is given, so every
// decision is reproducible in tests.
//
// # Algorithm
//
// Pieces are divided into blocks of Config.BlockSize bytes (16 KiB); the
// last block of a piece and the last piece may be short. Each block is free,
// in flight to one or more peers, or received.
//
// When Pick is asked for blocks for a peer it fills the request pipeline in
// this order:
//
//  1. The piece the peer is already working on, if it still has free blocks
//     (the common path: O(1) plus a scan of that piece's blocks). A peer
//     keeps working on "its" piece, so pieces finish quickly and a bad piece
//     has few suppliers.
//  2. Another partially requested piece the peer has, the one closest to
//     being fully requested first. Finishing started pieces beats starting
//     new ones: partial pieces cannot be shared with other peers.
//  3. A new piece the peer has. Pieces with a priority above Normal (the
//     "hot" set, e.g. a streaming window) come first, by priority then
//     index. Otherwise, until RandomFirst pieces are complete, a piece is
//     chosen uniformly at random, so a newcomer soon has something to trade;
//     after that the rarest piece is chosen (fewest peers have it, by the
//     bitfields and HAVEs seen), with ties broken by scanning from a random
//     offset. This is one O(numPieces) scan per new piece.
//
// Deadlines (streaming, deadline.go): a piece given a deadline joins the
// hot set at least at High, ordered by nearest deadline; peers known to be
// much slower than the fastest leave near deadlines to faster peers, and a
// block still in flight close to its deadline is raced on a second peer.
//
// Priorities: a partial piece is preferred over a new piece unless the new
// piece has a strictly higher priority. Skip pieces are never requested and
// Complete ignores them.
//
// Endgame: once every block of every wanted piece is received or in flight,
// Pick hands out blocks that are already in flight to other peers, at most
// MaxDuplicates peers per block and never twice to the same peer, and (with
// rates known through SetPeerRate) only blocks this peer should deliver well
// before their owner, the end of a slow owner's queue first. When one
// copy arrives BlockReceived returns the other requesters so the caller can
// send them CANCEL.
//
// Releasing: Cancel, PeerChoked, RemovePeer and PieceFailed make blocks free
// again; the next Pick for any peer that has the piece will request them.
//
// A Picker is not safe for concurrent use; it is owned by the torrent's run
// loop.
package picker
