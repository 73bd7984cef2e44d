package session

import (
	"net/netip"

	"github.com/shoal-p2p/shoal/internal/wire"
)

const (
	pexEvery      = 60 // seconds between ut_pex messages to one peer (BEP 11: at most once a minute)
	pexMaxAdded   = 50
	maxCandidates = 2000
)

// pexEnabled: BEP 27 forbids peer exchange for private torrents.
func (t *Torrent) pexEnabled() bool { return !t.info.Private }

// sendPex sends each ut_pex-capable peer the connected peers it has not been
// told about yet, and those that left since.
func (t *Torrent) sendPex() {
	if !t.pexEnabled() {
		return
	}
	current := make(map[netip.AddrPort]byte, len(t.peers)) // listen address -> BEP 11 flags
	for _, ps := range t.peers {
		if ps.listenAddr.IsValid() {
			current[ps.listenAddr] = pexFlags(ps)
		}
	}
	for _, ps := range t.peers {
		id, ok := ps.ext[wire.ExtPex]
		if !ok || id <= 0 || id > 255 {
			continue
		}
		if ps.pexSent == nil {
			ps.pexSent = map[netip.AddrPort]bool{}
		}
		var msg wire.PexMsg
		for a, flags := range current {
			if a != ps.listenAddr && !ps.pexSent[a] && len(msg.Added) < pexMaxAdded {
				msg.Added = append(msg.Added, a)
				msg.AddedFlags = append(msg.AddedFlags, flags)
				ps.pexSent[a] = true
			}
		}
		for a := range ps.pexSent {
			if _, ok := current[a]; !ok && len(msg.Dropped) < pexMaxAdded {
				msg.Dropped = append(msg.Dropped, a)
				delete(ps.pexSent, a)
			}
		}
		if len(msg.Added) == 0 && len(msg.Dropped) == 0 {
			continue
		}
		ps.conn.Send(wire.Message{ID: wire.Extended, ExtID: uint8(id), Payload: msg.Marshal()})
	}
}

// pexFlags are the BEP 11 flags we send for ps: seed, ut_holepunch support,
// and "reachable" when we reached it by an outgoing connection.
func pexFlags(ps *peerState) byte {
	var f byte
	if ps.seed {
		f |= wire.PexSeed
	}
	if holepunchCapable(ps) {
		f |= wire.PexHolepunch
	}
	if ps.conn.Outbound {
		f |= wire.PexReachable
	}
	return f
}

// onPex adds the peers another peer told us about to our candidates.
func (t *Torrent) onPex(ps *peerState, payload []byte) {
	if !t.pexEnabled() {
		return
	}
	msg, err := wire.ParsePex(payload)
	if err != nil {
		t.drop(ps, "bad ut_pex message: %v", err)
		return
	}
	for _, a := range msg.Added {
		if len(t.cands) >= maxCandidates {
			break
		}
		if _, ok := t.cands[a]; !ok && !t.banned[a] && a.Port() != 0 {
			t.cands[a] = &candidate{via: ps.conn.Remote.PeerID}
		}
	}
	t.dialMore()
}
