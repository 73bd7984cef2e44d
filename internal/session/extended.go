package session

import (
	"net/netip"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/wire"
)

func haveMsg(piece int) wire.Message { return wire.Message{ID: wire.Have, Index: uint32(piece)} }

// onExtended handles BEP 10 messages: the extension handshake and the
// extensions we announced in it.
func (t *Torrent) onExtended(ps *peerState, m wire.Message) {
	if !ps.extended {
		t.drop(ps, "extended message without BEP 10 support")
		return
	}
	switch m.ExtID {
	case wire.ExtHandshakeID:
		h, err := wire.ParseExtHandshake(m.Payload)
		if err != nil {
			t.drop(ps, "bad extension handshake: %v", err)
			return
		}
		ps.ext = h.M
		if id := h.M[catalog.FloodExtName]; id > 0 && id <= 255 {
			pc := ps.conn
			t.c.flood.addPeer(pc.ID, func(b []byte) {
				pc.Send(wire.Message{ID: wire.Extended, ExtID: uint8(id), Payload: b})
			})
		} else {
			t.c.flood.removePeer(ps.conn.ID)
		}
		if h.Reqq > 0 {
			ps.reqq = min(h.Reqq, maxQueue)
		}
		if h.P > 0 && h.P < 65536 && !ps.conn.Outbound {
			ps.listenAddr = netip.AddrPortFrom(ps.conn.Addr.Addr(), uint16(h.P))
			if c := t.cands[ps.listenAddr]; c != nil {
				c.inUse = true
			}
		}
		t.onPunchHandshake(ps)
	case extMetadataID:
		t.onMetadata(ps, m.Payload)
	case extPexID:
		t.onPex(ps, m.Payload)
	case extFloodID:
		if err := t.c.flood.onMessage(ps.conn.ID, m.Payload); err != nil {
			t.drop(ps, "bad shoal_search message: %v", err)
		}
	case extPunchID:
		t.onPunchMsg(ps, m.Payload)
	case extHolepunchID:
		t.onHolepunch(ps, m.Payload)
	default:
		// an extension we did not announce: ignore
	}
}

// onMetadata serves our info dictionary (BEP 9) to peers that ask for it.
func (t *Torrent) onMetadata(ps *peerState, payload []byte) {
	msg, err := wire.ParseMetadataMsg(payload)
	if err != nil {
		t.drop(ps, "bad ut_metadata message: %v", err)
		return
	}
	theirID, ok := ps.ext["ut_metadata"]
	if !ok || theirID <= 0 || theirID > 255 {
		return
	}
	if msg.Type != wire.MetadataRequest {
		return // we never request metadata for a torrent we already have
	}
	raw := t.info.Raw
	start := msg.Piece * wire.MetadataPieceLen
	reply := wire.MetadataMsg{Type: wire.MetadataReject, Piece: msg.Piece}
	if start >= 0 && start < len(raw) {
		end := min(start+wire.MetadataPieceLen, len(raw))
		reply = wire.MetadataMsg{Type: wire.MetadataData, Piece: msg.Piece, TotalSize: len(raw), Data: raw[start:end]}
	}
	ps.conn.Send(wire.Message{ID: wire.Extended, ExtID: uint8(theirID), Payload: wire.AppendMetadataMsg(nil, reply)})
}
