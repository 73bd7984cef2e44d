package session

import (
	"net"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/internal/nat"
	"github.com/shoal-p2p/shoal/internal/peer"
	"github.com/shoal-p2p/shoal/internal/wire"
)

// BEP 55 ut_holepunch: a peer R connected to both A and B lets them connect
// to each other although neither can accept the other's connection.
//
//	A  dial to B fails (B is behind a NAT)
//	A → R  rendezvous{B}            R is a peer A knows B through (PEX), or any
//	                                ut_holepunch peer of the torrent
//	R → B  connect{A}               R answers error{code} to A when it is not
//	R → A  connect{B}               connected to B, or B lacks the extension
//	A, B   connect to each other at once
//
// Endpoints are what R knows its peers by: the address a peer accepts
// connections at (remote IP + extension handshake "p"), else the
// connection's remote address. With Config.PunchPeers, A and B dial from
// their listen port (shared with the listener by SO_REUSEPORT): behind NATs
// that keep ports, both SYNs open each NAT for the other's, and the TCP
// simultaneous open gives one connection, on which both sides send their
// handshake first. Without it a connect is an ordinary dial: that still
// reaches a peer behind a NAT when we are the one that can accept (the NATed
// side dials out: connection reversal).
//
// Every shoal peer serves as R (it costs two small messages). A connect
// makes us dial an address another peer names, so connects are bounded per
// sending peer (holepunchPerMinute) and in flight per client (maxUpgrades),
// and an address is punched at most once per holepunchCooldown.
const (
	extHolepunchID     = 5
	holepunchCooldown  = 30 * time.Second // between rendezvous requests for, or punches to, one address
	holepunchPerMinute = 20               // rendezvous + connect messages accepted from one peer per minute
	maxHolepunchAddrs  = 1024             // bound on the per-address cooldown map
)

// holepunchCapable reports whether ps announced ut_holepunch.
func holepunchCapable(ps *peerState) bool {
	id := ps.ext[wire.ExtHolepunch]
	return id > 0 && id <= 255
}

// hpEndpoint is the endpoint we tell others ps can be reached at.
func hpEndpoint(ps *peerState) netip.AddrPort {
	if ps.listenAddr.IsValid() {
		return ps.listenAddr
	}
	return ps.conn.Addr
}

func (t *Torrent) sendHolepunch(ps *peerState, h wire.Holepunch) {
	b, err := h.MarshalBinary()
	if err != nil {
		return
	}
	ps.conn.Send(wire.Message{ID: wire.Extended, ExtID: uint8(ps.ext[wire.ExtHolepunch]), Payload: b})
}

// hpAllow spends one of ps's holepunch messages for this minute.
func (ps *peerState) hpAllow(now time.Time) bool {
	if now.Sub(ps.hpWindow) >= time.Minute {
		ps.hpWindow, ps.hpCount = now, 0
	}
	ps.hpCount++
	return ps.hpCount <= holepunchPerMinute
}

// hpCooling reports whether addr is in m since less than
// holepunchCooldown, and if not, puts it there now. t.hpAsked holds our
// rendezvous requests, t.hpDialed our punches.
func hpCooling(m map[netip.AddrPort]time.Time, addr netip.AddrPort, now time.Time) bool {
	if last, ok := m[addr]; ok && now.Sub(last) < holepunchCooldown {
		return true
	}
	if len(m) >= maxHolepunchAddrs {
		clear(m)
	}
	m[addr] = now
	return false
}

// findPeerAt finds a connected peer by the endpoint others know it by.
func (t *Torrent) findPeerAt(addr netip.AddrPort) *peerState {
	for pc, ps := range t.peers {
		if pc.Addr == addr || ps.listenAddr == addr {
			return ps
		}
	}
	return nil
}

// onHolepunch handles a ut_holepunch message from ps (owner loop).
func (t *Torrent) onHolepunch(ps *peerState, payload []byte) {
	if !holepunchCapable(ps) {
		return // it did not announce the extension: we cannot answer
	}
	var h wire.Holepunch
	if err := h.UnmarshalBinary(payload); err != nil {
		t.drop(ps, "bad ut_holepunch message: %v", err)
		return
	}
	now := time.Now()
	hp := &t.c.puncher().hp
	switch h.Type {
	case wire.HolepunchRendezvous:
		if !ps.hpAllow(now) {
			return
		}
		target := t.findPeerAt(h.Addr)
		code := uint32(0)
		switch {
		case target == ps || h.Addr == hpEndpoint(ps):
			code = wire.HolepunchNoSelf // asking us to introduce it to itself
		case target == nil:
			code = wire.HolepunchNotConnected
		case !holepunchCapable(target):
			code = wire.HolepunchNoSupport
		}
		if code != 0 {
			t.sendHolepunch(ps, wire.Holepunch{Type: wire.HolepunchError, Addr: h.Addr, ErrCode: code})
			t.log.Debug("ut_holepunch rendezvous refused", "from", ps.conn.Addr, "target", h.Addr, "code", code)
			return
		}
		t.sendHolepunch(target, wire.Holepunch{Type: wire.HolepunchConnect, Addr: hpEndpoint(ps)})
		t.sendHolepunch(ps, wire.Holepunch{Type: wire.HolepunchConnect, Addr: hpEndpoint(target)})
		hp.Relayed.Add(1)
		t.log.Info("ut_holepunch: introduced two peers", "a", hpEndpoint(ps), "b", hpEndpoint(target))
	case wire.HolepunchConnect:
		if !ps.hpAllow(now) {
			return
		}
		addr := h.Addr
		if !holepunchTargetOK(addr, ps.conn.Addr.Addr()) {
			return
		}
		if t.findPeerAt(addr) != nil || t.banned[addr] || hpCooling(t.hpDialed, addr, now) {
			return
		}
		if !t.c.puncher().beginAddr() {
			return
		}
		hp.Attempts.Add(1)
		t.log.Info("ut_holepunch: connecting", "peer", addr, "via", ps.conn.Addr, "punch", t.c.cfg.PunchPeers)
		go t.holepunchDial(addr)
	case wire.HolepunchError:
		// the next failed dial may ask again (R may have met the target
		// since); dial back-off bounds how often
		delete(t.hpAsked, h.Addr)
		hp.Fallbacks.Add(1)
		t.log.Info("ut_holepunch: rendezvous failed", "target", h.Addr, "via", ps.conn.Addr, "code", h.ErrCode)
	}
}

// holepunchTargetOK reports whether a connect naming target, sent by a peer
// at from, may be dialled: a unicast address with a port, and loopback or
// link-local only when the sender is on our host or link too (a remote
// peer must not make us dial our own local services).
func holepunchTargetOK(target netip.AddrPort, from netip.Addr) bool {
	a := target.Addr().Unmap()
	if !a.IsValid() || target.Port() == 0 || a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	from = from.Unmap()
	if a.IsLoopback() && !from.IsLoopback() {
		return false
	}
	if a.IsLinkLocalUnicast() && !from.IsLinkLocalUnicast() && !from.IsLoopback() {
		return false
	}
	return true
}

// requestRendezvous asks a ut_holepunch peer to introduce us to addr, after
// a dial to addr failed (owner loop). It prefers the peer that told us
// about addr.
func (t *Torrent) requestRendezvous(addr netip.AddrPort, c *candidate) {
	if t.isComplete() && c.seed {
		return
	}
	var via *peerState
	if ps := t.byID[c.via]; ps != nil && holepunchCapable(ps) {
		via = ps
	} else {
		for _, ps := range t.peers {
			if holepunchCapable(ps) && ps.conn.Addr != addr && ps.listenAddr != addr {
				via = ps
				break
			}
		}
	}
	if via == nil || hpCooling(t.hpAsked, addr, time.Now()) {
		return
	}
	t.sendHolepunch(via, wire.Holepunch{Type: wire.HolepunchRendezvous, Addr: addr})
	t.c.puncher().hp.Requests.Add(1)
	t.log.Info("ut_holepunch: asking for a rendezvous", "target", addr, "via", via.conn.Addr)
}

// holepunchDial connects to addr after a ut_holepunch connect, by TCP
// simultaneous open from the listen port (Config.PunchPeers) or by an
// ordinary dial, and hands the connection to the loop.
func (t *Torrent) holepunchDial(addr netip.AddrPort) {
	p := t.c.puncher()
	defer p.endAddr()
	ctx, cancel := t.untilStopped(nat.PunchWindow + peer.HandshakeTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if t.c.cfg.PunchPeers {
		nc, err = nat.Punch(ctx, t.c.punchLocal(addr), addr, nat.PunchWindow)
	} else {
		d := net.Dialer{Timeout: nat.PunchWindow}
		nc, err = d.DialContext(ctx, "tcp", addr.String())
	}
	var hs wire.Handshake
	if err == nil {
		// after a simultaneous open neither side is the acceptor: both
		// send their handshake first, which Initiate does
		hs, err = peer.Initiate(nc, t.handshake())
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		p.hp.Fallbacks.Add(1)
		t.log.Info("ut_holepunch: no direct connection", "peer", addr, "err", err)
		return
	}
	p.hp.Successes.Add(1)
	t.log.Info("ut_holepunch: connected", "peer", addr, "local", nc.LocalAddr())
	select {
	case t.conns <- newConn{nc: nc, hs: hs, outbound: true}:
	case <-t.stopped:
		nc.Close()
	}
}

// punchLocal is the local endpoint punches dial from: the listen port, on
// the listen address or the unspecified address of remote's family.
func (c *Client) punchLocal(remote netip.AddrPort) netip.AddrPort {
	ip := netip.IPv4Unspecified()
	if remote.Addr().Is6() && !remote.Addr().Is4In6() {
		ip = netip.IPv6Unspecified()
	}
	if ap, err := netip.ParseAddrPort(c.ln.Addr().String()); err == nil && !ap.Addr().IsUnspecified() {
		ip = ap.Addr()
	}
	return netip.AddrPortFrom(ip, c.port)
}
