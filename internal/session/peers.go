package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/shoal-p2p/shoal/internal/bitfield"
	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/choker"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/picker"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// Our extension message ids (BEP 10): what peers must use when sending to us.
const (
	extMetadataID = 1
	extPexID      = 2
	extFloodID    = 3
)

const (
	minQueue      = 32  // requests kept in flight per peer at least
	maxQueue      = 500 // and at most (also capped by the peer's reqq)
	defaultReqq   = 250 // assumed when a peer does not say
	maxStrikes    = 2   // failed pieces a peer sent alone before it is banned (blame.go for shared ones)
	rateSmoothing = 0.25
)

// peerState is everything the owner loop knows about one connection.
type peerState struct {
	conn        *peer.Conn
	pid         picker.PeerID
	connectedAt time.Time
	listenAddr  netip.AddrPort // where the peer accepts connections (outbound addr, or ext handshake "p")

	amChoking, amInterested     bool
	peerChoking, peerInterested bool
	fast, extended              bool
	sawAvail                    bool // a bitfield, have-all/none or have arrived
	seed                        bool
	optimistic                  bool
	snubbed                     bool
	reqq                        int
	ext                         map[string]int // the peer's extension ids
	allowedFast                 []int
	have                        bitfield.Bitfield
	pexSent                     map[netip.AddrPort]bool // listen addresses we told this peer about
	hpWindow                    time.Time               // start of the minute hpCount counts in
	hpCount                     int                     // ut_holepunch messages from the peer this minute

	lastPiece        time.Time
	lastDown, lastUp int64
	downRate, upRate float64
	strikes, stalls  int
	sendq            *peer.SendQueue // kernel send queue sized to the upload rate
	sentLastSec      int64           // bytes uploaded in the last second (seed pacing)
}

// haveShare is the fraction of the torrent's n pieces the peer has told us
// it holds.
func (ps *peerState) haveShare(n int) float64 {
	if n <= 0 || ps.have.Len() == 0 {
		return 0
	}
	return float64(ps.have.Count()) / float64(n)
}

// updateRates folds the last second's bytes into the smoothed rates and
// returns the bytes uploaded since the previous call.
func (ps *peerState) updateRates() (uploaded int64) {
	d, u := ps.conn.Downloaded(), ps.conn.Uploaded()
	ps.downRate = (1-rateSmoothing)*ps.downRate + rateSmoothing*float64(d-ps.lastDown)
	uploaded = u - ps.lastUp
	ps.upRate = (1-rateSmoothing)*ps.upRate + rateSmoothing*float64(uploaded)
	ps.sendq.Adapt(max(ps.upRate, float64(uploaded))) // the last second counts at once: a fast start needs a big queue
	ps.lastDown, ps.lastUp = d, u
	return uploaded
}

func (t *Torrent) addConn(ctx context.Context, nc newConn) {
	if len(t.peers) >= t.c.cfg.MaxPeers+5 {
		t.evictIdle() // a flood of silent connections must not lock honest peers out
	}
	if t.bannedIDs[nc.hs.PeerID] || len(t.peers) >= t.c.cfg.MaxPeers+5 || t.c.conns.Load() >= int64(t.c.cfg.MaxConns) {
		nc.nc.Close()
		return
	}
	if ip := remoteIP(nc.nc); !ip.IsLoopback() && t.peersFromIP(ip) >= t.c.cfg.MaxPerIP {
		nc.nc.Close() // one host may not take many of our slots
		return
	}
	if old := t.byID[nc.hs.PeerID]; old != nil {
		// Already connected (both sides dialled at once, e.g. after PEX).
		// Both ends must keep the same one: the connection dialled by the
		// peer with the lower peer id.
		weLower := bytes.Compare(t.c.peerID[:], nc.hs.PeerID[:]) < 0
		if nc.outbound != weLower || old.conn.Outbound == weLower {
			nc.nc.Close()
			return
		}
		t.removePeer(old, errors.New("duplicate connection"))
	}
	sendq := peer.NewSendQueue(nc.nc)
	conn := limitConn(ctx, nc.nc, []*rate.Limiter{t.c.up, t.up}, []*rate.Limiter{t.c.down, t.down})
	pc := peer.New(conn, t.c.nextConnID.Add(1), nc.hs, nc.outbound, peer.Config{
		Data: t.store, PieceLength: t.info.PieceLength,
		MaxMsgLen: max(wire.MaxBlock+13, (t.info.NumPieces()+7)/8+1),
	})
	now := time.Now()
	ps := &peerState{
		conn: pc, pid: picker.PeerID(pc.ID), connectedAt: now, lastPiece: now,
		amChoking: true, peerChoking: true,
		fast: nc.hs.Fast(), extended: nc.hs.Extended(), reqq: defaultReqq,
		have: bitfield.New(t.info.NumPieces()), sendq: sendq,
	}
	if nc.outbound {
		ps.listenAddr = pc.Addr
		if c := t.cands[pc.Addr]; c != nil {
			c.inUse = true
			c.failures = 0
		}
	}
	t.peers[pc] = ps
	t.c.conns.Add(1)
	t.byID[nc.hs.PeerID] = ps
	t.pick.AddPeer(ps.pid)
	t.log.Debug("peer connected", "peer", pc.Addr, "out", nc.outbound, "client", clientName(nc.hs.PeerID))

	if ps.extended {
		pc.Send(wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Payload: t.extHandshake(pc.Addr)})
	}
	switch {
	case ps.fast && t.isComplete():
		pc.Send(wire.Message{ID: wire.HaveAll})
	case ps.fast && t.have.Count() == 0:
		pc.Send(wire.Message{ID: wire.HaveNone})
	case t.have.Count() > 0:
		pc.Send(wire.Message{ID: wire.Bitfield, Payload: t.have.Clone().Bytes()})
	}
	t.sendPort(ps)
	pc.Run(ctx, t.events)
}

func (t *Torrent) extHandshake(remote netip.AddrPort) []byte {
	h := wire.ExtHandshake{
		M:            map[string]int{wire.ExtMetadata: extMetadataID},
		V:            Version,
		P:            int(t.c.port),
		Reqq:         maxQueue,
		MetadataSize: len(t.info.Raw),
	}
	if a := remote.Addr(); a.Is4() {
		b := a.As4()
		h.YourIP = b[:]
	} else {
		b := a.As16()
		h.YourIP = b[:]
	}
	if t.pexEnabled() {
		h.M[wire.ExtPex] = extPexID
	}
	h.M[catalog.FloodExtName] = extFloodID
	h.M[wire.ExtHolepunch] = extHolepunchID
	if t.c.punchEnabled() {
		h.M[PunchExtName] = extPunchID
	}
	return h.Marshal()
}

func (t *Torrent) removePeer(ps *peerState, why error) {
	pc := ps.conn
	if _, ok := t.peers[pc]; !ok {
		return
	}
	t.uploaded.Add(ps.updateRates())
	heldSlot := !ps.amChoking && ps.peerInterested
	delete(t.peers, pc)
	t.c.conns.Add(-1)
	t.c.flood.removePeer(pc.ID)
	t.c.puncher().forget(pc.Addr)
	if t.byID[pc.Remote.PeerID] == ps {
		delete(t.byID, pc.Remote.PeerID)
	}
	t.pick.RemovePeer(ps.pid)
	t.choke.RemovePeer(choker.PeerID(ps.pid))
	t.seedChoke.RemovePeer(choker.PeerID(ps.pid))
	if c := t.cands[ps.listenAddr]; c != nil {
		c.inUse = false
		c.seed = ps.seed
	}
	pc.Close()
	t.log.Debug("peer gone", "peer", pc.Addr, "err", why)
	// others may now get the blocks it held
	for _, o := range t.peers {
		t.requestMore(o)
	}
	if heldSlot {
		// its unchoke slot is free: give it to someone who waits now, not
		// at the next round (a finished peer leaves without "not interested")
		t.rechoke(time.Now())
	}
}

// drop ends a connection for misbehaviour.
func (t *Torrent) drop(ps *peerState, format string, a ...any) {
	err := fmt.Errorf(format, a...)
	t.log.Info("dropping peer", "peer", ps.conn.Addr, "reason", err)
	t.removePeer(ps, err)
}

func (t *Torrent) onPeerEvent(ev peer.Event) {
	ps := t.peers[ev.Conn]
	if ps == nil {
		if ev.Msg.ID == wire.Piece {
			peer.PutBlock(ev.Msg.Payload)
		}
		return
	}
	if ev.Err != nil {
		t.removePeer(ps, ev.Err)
		return
	}
	m := ev.Msg
	switch m.ID {
	case wire.Choke:
		ps.peerChoking = true
		if !ps.fast { // with the fast extension the peer rejects pending requests explicitly
			t.pick.PeerChoked(ps.pid)
		}
	case wire.Unchoke:
		ps.peerChoking = false
		ps.lastPiece = time.Now()
		t.requestMore(ps)
	case wire.Interested:
		ps.peerInterested = true
		if ps.amChoking && t.busySlots() < t.slots()+1 {
			t.rechoke(time.Now()) // free slot: do not make the newcomer wait for the next round
		}
	case wire.NotInterested:
		ps.peerInterested = false
		if !ps.amChoking {
			t.rechoke(time.Now()) // its slot is idle now: give it to someone who wants data
		}
	case wire.Have:
		if int(m.Index) >= t.info.NumPieces() {
			t.drop(ps, "have for piece %d of %d", m.Index, t.info.NumPieces())
			return
		}
		if !ps.have.Has(int(m.Index)) {
			ps.have.Set(int(m.Index))
			t.pick.PeerHave(ps.pid, int(m.Index))
		}
		ps.sawAvail = true
		t.afterAvailability(ps)
	case wire.Bitfield:
		bf, err := bitfield.FromBytes(m.Payload, t.info.NumPieces())
		if err != nil {
			t.drop(ps, "bad bitfield: %v", err)
			return
		}
		if !ps.sawAvail {
			ps.have = bf
			t.pick.PeerBitfield(ps.pid, bf)
		} else {
			// BEP 3 wants the bitfield first, but some clients (aria2) send it
			// late: merge it rather than drop a peer that is otherwise fine.
			for i := 0; i < bf.Len(); i++ {
				if bf.Has(i) && !ps.have.Has(i) {
					ps.have.Set(i)
					t.pick.PeerHave(ps.pid, i)
				}
			}
		}
		ps.sawAvail = true
		t.afterAvailability(ps)
	case wire.HaveAll, wire.HaveNone:
		if !ps.fast {
			t.drop(ps, "%v without the fast extension", m.ID)
			return
		}
		if m.ID == wire.HaveAll {
			ps.have.SetAll()
			t.pick.PeerHaveAll(ps.pid)
		}
		ps.sawAvail = true
		t.afterAvailability(ps)
	case wire.Request:
		t.onRequest(ps, m)
	case wire.Cancel:
		ps.conn.CancelUpload(m.Index, m.Begin, m.Length)
	case wire.Piece:
		t.onPiece(ps, m)
	case wire.Reject:
		if !ps.fast {
			t.drop(ps, "reject without fast extension")
			return
		}
		t.pick.Cancel(ps.pid, picker.Block{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)})
		t.requestMore(ps)
	case wire.AllowedFast:
		if int(m.Index) < t.info.NumPieces() && len(ps.allowedFast) < 64 {
			ps.allowedFast = append(ps.allowedFast, int(m.Index))
			t.requestMore(ps)
		}
	case wire.Port:
		t.onPort(ps, m.Port)
	case wire.Suggest:
		// a hint we do not act on
	case wire.Extended:
		t.onExtended(ps, m)
	default:
		// unknown message ids are ignored, as BEP 3 implementations do
	}
}

// afterAvailability updates interest and seed status after the peer's pieces changed.
func (t *Torrent) afterAvailability(ps *peerState) {
	ps.seed = ps.have.Count() == t.info.NumPieces()
	if ps.seed && t.isComplete() {
		t.removePeer(ps, errors.New("both seeds"))
		return
	}
	t.updateInterest(ps)
	t.requestMore(ps)
}

func (t *Torrent) updateInterest(ps *peerState) {
	want := !t.isComplete() && t.pick.Interesting(ps.pid)
	if want != ps.amInterested {
		ps.amInterested = want
		if want {
			ps.conn.Send(wire.Message{ID: wire.Interested})
		} else {
			ps.conn.Send(wire.Message{ID: wire.NotInterested})
		}
	}
}

// requestMore tops up the peer's request pipeline.
func (t *Torrent) requestMore(ps *peerState) {
	if !ps.amInterested || t.diskErr != nil {
		return
	}
	want := int(ps.downRate * 2 / blockSize) // two seconds of data in flight
	want = max(minQueue, min(want, maxQueue, ps.reqq))
	n := want - t.pick.Inflight(ps.pid)
	if n <= 0 {
		return
	}
	var blocks []picker.Block
	switch {
	case !ps.peerChoking:
		blocks = t.pick.PickAt(ps.pid, n, time.Now()) // deadlines (streaming) first, then rarest first
	case ps.fast && len(ps.allowedFast) > 0:
		blocks = t.pick.PickFast(ps.pid, ps.allowedFast, n)
	}
	for _, b := range blocks {
		ps.conn.Send(wire.Message{ID: wire.Request, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
	}
}

func cancelMsg(b picker.Block) wire.Message {
	return wire.Message{ID: wire.Cancel, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)}
}

func (t *Torrent) onRequest(ps *peerState, m wire.Message) {
	piece := int(m.Index)
	reject := func() {
		if ps.fast {
			ps.conn.Send(wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
		}
	}
	if piece >= t.info.NumPieces() || m.Length == 0 || m.Length > wire.MaxBlock ||
		int64(m.Begin)+int64(m.Length) > t.info.PieceSize(piece) {
		t.drop(ps, "invalid request %d+%d len %d", m.Index, m.Begin, m.Length)
		return
	}
	if !t.have.Has(piece) || ps.amChoking {
		reject()
		return
	}
	if !t.serveRequest(ps, m) {
		reject()
	}
}

func (t *Torrent) onPiece(ps *peerState, m wire.Message) {
	defer peer.PutBlock(m.Payload)
	piece := int(m.Index)
	if piece >= t.info.NumPieces() || len(m.Payload) == 0 ||
		int64(m.Begin)+int64(len(m.Payload)) > t.info.PieceSize(piece) || int(m.Begin)%blockSize != 0 {
		t.drop(ps, "piece message out of range: %d+%d len %d", m.Index, m.Begin, len(m.Payload))
		return
	}
	b := picker.Block{Piece: piece, Begin: int(m.Begin), Length: len(m.Payload)}
	if b.Length != min(blockSize, int(t.info.PieceSize(piece))-b.Begin) {
		t.drop(ps, "piece message with odd block length %d", b.Length)
		return
	}
	ps.lastPiece = time.Now()
	if t.have.Has(piece) {
		t.wasted += int64(b.Length)
		return // late endgame duplicate
	}
	dup, cancels, done := t.pick.BlockReceived(ps.pid, b)
	for _, c := range cancels {
		for _, o := range t.peers {
			if o.pid == c.Peer {
				o.conn.Send(cancelMsg(c.Block))
			}
		}
	}
	if !dup {
		off := t.info.PieceOffset(piece) + int64(m.Begin)
		if _, err := t.store.WriteAt(m.Payload, off); err != nil {
			t.storageFailed(piece, fmt.Errorf("write piece %d: %w", piece, err))
			return
		}
		t.downloaded.Add(int64(len(m.Payload)))
	} else {
		t.wasted += int64(b.Length)
	}
	if done && !t.hashing[piece] {
		t.queueHash(piece)
	}
	t.requestMore(ps)
}

func (t *Torrent) setChoking(ps *peerState, choke bool) {
	if ps.amChoking == choke {
		return
	}
	ps.amChoking = choke
	if choke {
		ps.conn.Send(wire.Message{ID: wire.Choke})
		for _, u := range ps.conn.ClearUploads() {
			if ps.fast {
				ps.conn.Send(wire.Message{ID: wire.Reject, Index: u.Index, Begin: u.Begin, Length: u.Length})
			}
		}
		return
	}
	ps.conn.Send(wire.Message{ID: wire.Unchoke})
}

// clientName decodes the common Azureus-style peer id prefix for logs.
func clientName(id [20]byte) string {
	if id[0] == '-' && id[7] == '-' {
		return string(id[1:7])
	}
	return fmt.Sprintf("%x", id[:4])
}

func remoteIP(nc net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (t *Torrent) peersFromIP(ip netip.Addr) int {
	n := 0
	for pc := range t.peers {
		if pc.Addr.Addr() == ip {
			n++
		}
	}
	return n
}

// idleEvictAge: a connection that has said nothing useful for this long may
// be closed to make room when the torrent is at its connection cap.
const idleEvictAge = 60 * time.Second

// evictIdle closes the oldest connection that never sent its pieces and is
// not interested in ours, if it is older than idleEvictAge.
func (t *Torrent) evictIdle() {
	var victim *peerState
	now := time.Now()
	for _, ps := range t.peers {
		if ps.sawAvail || ps.peerInterested || now.Sub(ps.connectedAt) < idleEvictAge {
			continue
		}
		if victim == nil || ps.connectedAt.Before(victim.connectedAt) {
			victim = ps
		}
	}
	if victim != nil {
		t.removePeer(victim, errors.New("idle at the connection cap"))
	}
}
