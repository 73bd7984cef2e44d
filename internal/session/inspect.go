package session

import (
	"net/netip"
	"time"
)

// maxRounds is how many tit-for-tat rounds a torrent remembers for display.
const maxRounds = 60

// PeerInfo describes one connection as the owner loop sees it.
type PeerInfo struct {
	Addr           netip.AddrPort `json:"addr"`
	Client         string         `json:"client"`
	Outbound       bool           `json:"outbound"`
	AmChoking      bool           `json:"am_choking"`      // we refuse to upload to it
	AmInterested   bool           `json:"am_interested"`   // we want its pieces
	PeerChoking    bool           `json:"peer_choking"`    // it refuses to upload to us
	PeerInterested bool           `json:"peer_interested"` // it wants our pieces
	Optimistic     bool           `json:"optimistic"`      // holds our optimistic unchoke
	Snubbed        bool           `json:"snubbed"`
	Seed           bool           `json:"seed"`
	DownRate       float64        `json:"down_rate"` // bytes/s it sends us
	UpRate         float64        `json:"up_rate"`   // bytes/s we send it
	Downloaded     int64          `json:"downloaded"`
	Uploaded       int64          `json:"uploaded"`
	Pieces         int            `json:"pieces"`
}

// ChokeRound is one tit-for-tat decision: who we unchoked and why.
type ChokeRound struct {
	At      time.Time  `json:"at"`
	Seeding bool       `json:"seeding"`
	Peers   []PeerInfo `json:"peers"`
}

func (ps *peerState) info() PeerInfo {
	return PeerInfo{
		Addr: ps.conn.Addr, Client: clientName(ps.conn.Remote.PeerID), Outbound: ps.conn.Outbound,
		AmChoking: ps.amChoking, AmInterested: ps.amInterested, PeerChoking: ps.peerChoking,
		PeerInterested: ps.peerInterested, Optimistic: ps.optimistic, Snubbed: ps.snubbed, Seed: ps.seed,
		DownRate: ps.downRate, UpRate: ps.upRate, Downloaded: ps.conn.Downloaded(), Uploaded: ps.conn.Uploaded(),
		Pieces: ps.have.Count(),
	}
}

// Peers lists the current connections (nil if the torrent has stopped).
func (t *Torrent) Peers() []PeerInfo {
	var out []PeerInfo
	t.do(func() {
		for _, ps := range t.peers {
			out = append(out, ps.info())
		}
	})
	return out
}

// ChokeRounds returns the remembered tit-for-tat rounds, oldest first.
func (t *Torrent) ChokeRounds() []ChokeRound {
	var out []ChokeRound
	t.do(func() { out = append(out, t.rounds...) })
	return out
}

// PieceMap returns which pieces are verified (a copy).
func (t *Torrent) PieceMap() []bool {
	var out []bool
	t.do(func() {
		out = make([]bool, t.info.NumPieces())
		for i := range out {
			out[i] = t.have.Has(i)
		}
	})
	return out
}

// Close stops the torrent (peers disconnected, resume record written,
// trackers told) and waits until it has stopped. Add it again to restart.
func (t *Torrent) Close() {
	t.cancel()
	<-t.stopped
}
