package session

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/internal/storage"
)

// hashQueue is the capacity of a torrent's hash job channel. More pieces
// wait in the loop's hashBacklog slice, which costs nothing when empty (a
// 64k-slot channel cost 512 KiB per torrent, 100 MiB for 200 torrents).
const hashQueue = 64

// queueHash hands a fully received piece to the hashing workers without ever
// blocking the owner loop.
func (t *Torrent) queueHash(piece int) {
	t.hashing[piece] = true
	select {
	case t.hashJobs <- piece:
	default:
		t.hashBacklog = append(t.hashBacklog, piece)
	}
}

// hashBufs holds piece buffers (*[]byte) shared by the hash workers of every
// torrent. Workers take one per piece and give it back, so an idle seeder
// with hundreds of torrents holds none (the pool empties at GC) instead of
// cores × piece length per torrent.
var hashBufs sync.Pool

func getHashBuf(n int) *[]byte {
	if p, _ := hashBufs.Get().(*[]byte); p != nil && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// hashWorker verifies pieces read back from storage; it reports to the loop.
func (t *Torrent) hashWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case piece := <-t.hashJobs:
			buf := getHashBuf(int(t.info.PieceLength))
			ok, err := storage.HashPiece(t.store, t.info, piece, *buf)
			var blocks [][sha1.Size]byte
			if err == nil && (!ok || t.wantBlockDigests(piece)) {
				blocks = blockDigests((*buf)[:t.info.PieceSize(piece)], blockSize)
			}
			hashBufs.Put(buf)
			select {
			case t.hashed <- hashResult{piece: piece, ok: ok, err: err, blocks: blocks}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// onHashed records a verified piece or throws a failed one away.
func (t *Torrent) onHashed(r hashResult) {
	if r.piece < 0 { // a background resume save finished
		t.saving = false
		return
	}
	delete(t.hashing, r.piece)
	for len(t.hashBacklog) > 0 {
		select {
		case t.hashJobs <- t.hashBacklog[0]:
			t.hashBacklog = t.hashBacklog[1:]
			continue
		default:
		}
		break
	}
	if r.err != nil {
		if !errors.Is(r.err, context.Canceled) {
			t.storageFailed(r.piece, fmt.Errorf("read piece %d: %w", r.piece, r.err))
		}
		return
	}
	if t.have.Has(r.piece) {
		t.onServeCheck(r.piece, r.ok)
		return
	}
	t.webseedHashed(r.piece, r.ok)
	if !r.ok {
		t.hashFails++
		contributors := t.pick.BlockPeers(r.piece)
		suppliers := t.pick.BlockSuppliers(r.piece)
		t.pick.PieceFailed(r.piece)
		t.log.Warn("piece failed hash check; fetching it again", "piece", r.piece, "peers", len(contributors))
		if len(contributors) == 1 {
			// The only sender is surely the culprit.
			for _, ps := range t.peers {
				if ps.pid != contributors[0] {
					continue
				}
				if ps.strikes++; ps.strikes >= maxStrikes {
					t.ban(ps.conn.Remote.PeerID, ps.listenAddr)
					t.drop(ps, "took part in %d pieces that failed their hash", ps.strikes)
				}
			}
		} else {
			// Several senders: which one lied shows once a copy passes.
			t.remember(r.piece, suppliers, r.blocks)
		}
		for _, ps := range t.peers {
			t.requestMore(ps)
		}
		return
	}
	t.settle(r.piece, r.blocks)
	t.have.Set(r.piece)
	t.checked.Set(r.piece)
	t.pick.MarkHave(r.piece)
	t.streamPieceDone(r.piece)
	t.dirty = true
	t.left.Add(-t.info.PieceSize(r.piece))
	for _, ps := range t.peers {
		ps.conn.Send(haveMsg(r.piece))
	}
	justDone := false
	if t.pick.Complete() && !t.isDone() {
		t.log.Info("download complete")
		t.markDone()
		t.saveResume(false)
		justDone = true
	}
	if t.isComplete() {
		t.stampFiles()
		for _, ps := range t.peers {
			if ps.seed {
				t.removePeer(ps, errors.New("both seeds"))
				continue
			}
			t.updateInterest(ps)
		}
		if justDone {
			t.rechoke(time.Now()) // seeding: more slots, ranked for seeding, from now on
		}
	} else {
		for _, ps := range t.peers {
			if ps.amInterested {
				t.updateInterest(ps)
			}
		}
	}
	t.publish()
}
