package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Rendezvous protocol: the PUNCH exchange a relay runs for two NATed peers
// that both keep a connection to it. It is the relay control protocol's
// PUNCH extension, served on a port of its own so that it can run beside
// any relay.
//
//	peer A                         rendezvous R                        peer B
//	  |-- Magic, REGISTER{id A} ------->|<------- Magic, REGISTER{id B} --|
//	  |<-- OBSERVED{A's public addr} ---|--- OBSERVED{B's public addr} -->|
//	  |-- CONNECT{id B} --------------->|
//	  |<-- PUNCH{id B, B's addr} -------|------- PUNCH{id A, A's addr} -->|
//	  |====== both dial each other from their registered local port ======|
//	  |<-- ERROR{text} (CONNECT to an unknown peer; R keeps the connection)
//
// A peer re-learns its endpoint by registering again from a fresh local
// port (the newest registration of an id wins). Frames:
//
//	length uint16 (of type+body, 1..rvMaxFrame) | type uint8 | body
//	REGISTER 1: peer id [20]byte           OBSERVED 2: addr
//	CONNECT  3: peer id [20]byte           PUNCH    4: peer id [20]byte | addr
//	ERROR    5: text (<= 200 bytes)        PING 6 / PONG 7: empty
//	addr = iplen uint8 (4 or 16) | ip | port uint16
const (
	RendezvousMagic = "SHOALPN1"
	rvMaxFrame      = 256
	rvRegister      = 1
	rvObserved      = 2
	rvConnect       = 3
	rvPunch         = 4
	rvError         = 5
	rvPing          = 6
	rvPong          = 7
	rvReadTimeout   = 90 * time.Second
	rvPingInterval  = 30 * time.Second
	rvMaxPeers      = 10000
)

type rvMsg struct {
	typ  byte
	id   [20]byte
	addr netip.AddrPort
	text string
}

func (m rvMsg) encode() ([]byte, error) {
	b := []byte{0, 0, m.typ}
	switch m.typ {
	case rvRegister, rvConnect:
		b = append(b, m.id[:]...)
	case rvObserved, rvPunch:
		if m.typ == rvPunch {
			b = append(b, m.id[:]...)
		}
		if !m.addr.IsValid() {
			return nil, errors.New("rendezvous: invalid address")
		}
		a := m.addr.Addr().Unmap()
		b = append(b, byte(a.BitLen()/8))
		b = append(b, a.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, m.addr.Port())
	case rvError:
		t := m.text
		if len(t) > 200 {
			t = t[:200]
		}
		b = append(b, t...)
	case rvPing, rvPong:
	default:
		return nil, fmt.Errorf("rendezvous: cannot encode type %d", m.typ)
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b, nil
}

func readRV(r io.Reader) (rvMsg, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return rvMsg{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > rvMaxFrame {
		return rvMsg{}, fmt.Errorf("rendezvous: frame length %d out of range", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return rvMsg{}, err
	}
	return decodeRV(buf)
}

func decodeRV(b []byte) (rvMsg, error) {
	m := rvMsg{typ: b[0]}
	body := b[1:]
	need := func(k int) error {
		if len(body) < k {
			return fmt.Errorf("rendezvous: type %d truncated", m.typ)
		}
		return nil
	}
	switch m.typ {
	case rvRegister, rvConnect:
		if len(body) != 20 {
			return rvMsg{}, fmt.Errorf("rendezvous: type %d body of %d bytes, want 20", m.typ, len(body))
		}
		copy(m.id[:], body)
		return m, nil
	case rvObserved, rvPunch:
		if m.typ == rvPunch {
			if err := need(20); err != nil {
				return rvMsg{}, err
			}
			copy(m.id[:], body)
			body = body[20:]
		}
		if err := need(1); err != nil {
			return rvMsg{}, err
		}
		l := int(body[0])
		if l != 4 && l != 16 {
			return rvMsg{}, fmt.Errorf("rendezvous: address length %d", l)
		}
		if len(body) != 1+l+2 {
			return rvMsg{}, fmt.Errorf("rendezvous: address of %d bytes, want %d", len(body), 1+l+2)
		}
		ip, _ := netip.AddrFromSlice(body[1 : 1+l])
		m.addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[1+l:]))
		return m, nil
	case rvError:
		if len(body) > 200 {
			return rvMsg{}, errors.New("rendezvous: error text too long")
		}
		m.text = string(body)
		return m, nil
	case rvPing, rvPong:
		if len(body) != 0 {
			return rvMsg{}, errors.New("rendezvous: trailing bytes")
		}
		return m, nil
	}
	return rvMsg{}, fmt.Errorf("rendezvous: unknown type %d", m.typ)
}

// RendezvousServer pairs registered peers for punching.
type RendezvousServer struct {
	ln  net.Listener // static after construction
	log *slog.Logger

	mu    sync.Mutex // guards peers
	peers map[[20]byte]*rvPeer

	Punches atomic.Int64 // PUNCH pairs sent
}

type rvPeer struct {
	conn     net.Conn
	observed netip.AddrPort
	wmu      sync.Mutex
}

func (p *rvPeer) send(m rvMsg) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.write(m)
}

// write sends m; the caller holds wmu.
func (p *rvPeer) write(m rvMsg) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = p.conn.Write(b)
	return err
}

// NewRendezvousServer listens on addr (HOST:PORT).
func NewRendezvousServer(addr string, log *slog.Logger) (*RendezvousServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RendezvousServer{ln: ln, log: log, peers: map[[20]byte]*rvPeer{}}, nil
}

// Addr is the listening address.
func (s *RendezvousServer) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts peers until ctx ends, then closes everything and waits.
func (s *RendezvousServer) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("rendezvous: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c)
		}()
	}
}

func (s *RendezvousServer) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var magic [len(RendezvousMagic)]byte
	if _, err := io.ReadFull(c, magic[:]); err != nil || string(magic[:]) != RendezvousMagic {
		return
	}
	m, err := readRV(c)
	if err != nil || m.typ != rvRegister {
		return
	}
	observed, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	observed = netip.AddrPortFrom(observed.Addr().Unmap(), observed.Port())
	p := &rvPeer{conn: c, observed: observed}
	id := m.id
	// Nothing may reach p before its OBSERVED: once p is in the map, another
	// peer's CONNECT writes a PUNCH to it, so p's writer stays locked from
	// before it is published until the OBSERVED is out.
	p.wmu.Lock()
	s.mu.Lock()
	if len(s.peers) >= rvMaxPeers && s.peers[id] == nil {
		s.mu.Unlock()
		p.write(rvMsg{typ: rvError, text: "rendezvous full"})
		p.wmu.Unlock()
		return
	}
	old := s.peers[id]
	s.peers[id] = p
	s.mu.Unlock()
	if old != nil {
		old.conn.Close() // the newest registration wins
	}
	defer func() {
		s.mu.Lock()
		if s.peers[id] == p {
			delete(s.peers, id)
		}
		s.mu.Unlock()
	}()
	err = p.write(rvMsg{typ: rvObserved, addr: observed})
	p.wmu.Unlock()
	if err != nil {
		return
	}
	s.log.Info("rendezvous: registered", "observed", observed)
	for {
		c.SetReadDeadline(time.Now().Add(rvReadTimeout))
		m, err := readRV(c)
		if err != nil {
			return
		}
		switch m.typ {
		case rvPing:
			p.send(rvMsg{typ: rvPong})
		case rvPong:
		case rvConnect:
			s.mu.Lock()
			q := s.peers[m.id]
			s.mu.Unlock()
			if q == nil || q == p {
				p.send(rvMsg{typ: rvError, text: "unknown peer"})
				continue
			}
			// the target first: it must be dialing when the requester's SYN arrives
			q.send(rvMsg{typ: rvPunch, id: id, addr: p.observed})
			p.send(rvMsg{typ: rvPunch, id: m.id, addr: q.observed})
			s.Punches.Add(1)
			s.log.Info("rendezvous: punch", "a", p.observed, "b", q.observed)
		default:
			return
		}
	}
}

// PunchOrder is a PUNCH: dial Remote from the registration's local port.
type PunchOrder struct {
	PeerID [20]byte
	Remote netip.AddrPort
}

// Registration is a peer's connection to a rendezvous.
type Registration struct {
	conn     net.Conn       // static
	Local    netip.AddrPort // our local endpoint: punch from here
	Observed netip.AddrPort // our public endpoint as the rendezvous sees it
	Punches  chan PunchOrder
	Errors   chan string
	wmu      sync.Mutex
}

// Register connects to the rendezvous at server from a fresh, reusable
// local port on localIP (zero = any) and registers id. The registration
// lives until ctx ends or Close; its reader delivers PUNCH orders (and
// ERROR texts) on the channels, dropping them when nobody reads.
func Register(ctx context.Context, server string, localIP netip.Addr, id [20]byte) (*Registration, error) {
	la := netip.AddrPortFrom(localIP, 0)
	if !localIP.IsValid() {
		la = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	d := ReuseDialer(la, 10*time.Second)
	c, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: dial: %w", err)
	}
	b, _ := rvMsg{typ: rvRegister, id: id}.encode()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte(RendezvousMagic), b...)); err != nil {
		c.Close()
		return nil, fmt.Errorf("rendezvous: register: %w", err)
	}
	m, err := readRV(c)
	if err != nil || m.typ != rvObserved {
		c.Close()
		return nil, fmt.Errorf("rendezvous: no OBSERVED (%v, type %d)", err, m.typ)
	}
	c.SetDeadline(time.Time{})
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	r := &Registration{conn: c, Local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), Observed: m.addr,
		Punches: make(chan PunchOrder, 4), Errors: make(chan string, 4)}
	context.AfterFunc(ctx, func() { c.Close() })
	go r.read()
	go r.ping(ctx)
	return r, nil
}

func (r *Registration) read() {
	defer r.conn.Close()
	for {
		r.conn.SetReadDeadline(time.Now().Add(rvReadTimeout))
		m, err := readRV(r.conn)
		if err != nil {
			close(r.Punches)
			return
		}
		switch m.typ {
		case rvPunch:
			select {
			case r.Punches <- PunchOrder{PeerID: m.id, Remote: m.addr}:
			default:
			}
		case rvError:
			select {
			case r.Errors <- m.text:
			default:
			}
		case rvPing:
			r.send(rvMsg{typ: rvPong})
		}
	}
}

func (r *Registration) ping(ctx context.Context) {
	t := time.NewTicker(rvPingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.send(rvMsg{typ: rvPing}) != nil {
				return
			}
		}
	}
}

func (r *Registration) send(m rvMsg) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = r.conn.Write(b)
	return err
}

// Connect asks the rendezvous to have target punch toward us (and us toward it).
func (r *Registration) Connect(target [20]byte) error {
	return r.send(rvMsg{typ: rvConnect, id: target})
}

// Close ends the registration.
func (r *Registration) Close() error { return r.conn.Close() }
