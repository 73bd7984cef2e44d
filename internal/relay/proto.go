// Package relay lets a peer that cannot accept connections (behind a NAT or
// a firewall) be reached anyway: a relay on a public host gives it a public
// port, announces that port to trackers on its behalf, and splices every
// incoming BitTorrent connection on that port to a data connection the NATed
// peer opens outward. Peers on the other side are unmodified BitTorrent
// clients: to them the relay's address simply is the peer. The package knows
// no torrent logic beyond reading the 68-byte handshake's info-hash.
//
// # Protocol flow
//
//	NATed peer P                         relay R (main port)              outside peer X
//	  |-- TCP connect to R main port ------->|
//	  |-- Magic, HELLO{flags,port,peerid} -->|  R allocates a public port Q for P
//	  |                                      |  (and, if asked, dials P back to test reachability)
//	  |<-- WELCOME{R_ip:Q, flags} -----------|
//	  |-- TORRENTS{infohash,left,trackers}..>|  any time; replaces the set; R announces
//	  |                                      |  R_ip:Q to those trackers (tracker sees R's IP)
//	  |                                      |<-- TCP connect to R_ip:Q, BT handshake (68 B) --|
//	  |                                      |  R checks the info-hash against P's set
//	  |<-- CONNECT{session id, X's addr} ----|
//	  |-- new TCP to R main port ----------->|
//	  |-- Magic, DATA{session id} ---------->|  R replays the 68 bytes to P, then splices
//	  |<============== raw BitTorrent bytes, both ways, rate-limited ===================>|
//	  |<-> PING/PONG every PingInterval on the control connection
//	  |<-- ERROR{code,text} (then close) ----|  quota exceeded, bad message, ...
//
// Every connection to the relay's main port starts with the 8 bytes of Magic,
// then frames. A frame is
//
//	length uint32 big-endian   (of type+body; 1 <= length <= MaxFrame)
//	type   uint8
//	body   length-1 bytes, layout per type below
//
// The first frame says what the connection is: HELLO makes it a control
// connection (frames until either side closes), DATA makes it a data
// connection (after the frame: raw bytes of one spliced BitTorrent
// connection). Integers are big-endian. An address is encoded as
//
//	addr = iplen uint8 (4 or 16) | ip [iplen]byte | port uint16
package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Magic opens every connection to a relay's main port (version 1).
const Magic = "SHOALRL1"

// MaxFrame caps a frame's length (type + body); it is checked before any
// allocation.
const MaxFrame = 256 << 10

// Limits of a TORRENTS message, checked while decoding.
const (
	MaxTorrents   = 64  // torrents per peer
	MaxTrackers   = 4   // tracker URLs per torrent
	MaxURLLen     = 512 // bytes per tracker URL
	MaxErrorText  = 256 // bytes of an ERROR's text
	SessionIDSize = 16  // random, unguessable: it authenticates a DATA connection
)

// MsgType is a frame's type byte.
type MsgType uint8

// Message types.
const (
	// MsgHello (P->R), first frame of a control connection:
	//	flags uint8 (FlagProbe) | listen port uint16 | peer id [20]byte
	// The port is the peer's own BitTorrent listen port, used only for the
	// reachability probe; the peer id is the one the peer uses in handshakes.
	MsgHello MsgType = 1
	// MsgWelcome (R->P): addr | flags uint8 (FlagReachable)
	// addr is the public address the relay allocated for the peer.
	MsgWelcome MsgType = 2
	// MsgTorrents (P->R): the peer's whole torrent set, replacing the last one:
	//	count uint16 (<= MaxTorrents), then count times:
	//	  infohash [20]byte | left int64 (0 = seeding, -1 = unknown) |
	//	  flags+ntrackers uint8 (bit 7 = FlagPrivate: a BEP 27 private
	//	  torrent, never announced into the DHT; bits 0-6 = ntrackers
	//	  <= MaxTrackers), then ntrackers times:
	//	    len uint16 (<= MaxURLLen) | url [len]byte
	MsgTorrents MsgType = 3
	// MsgConnect (R->P): session id [16]byte | addr of the outside peer.
	// P answers by opening a data connection with DATA{session id}.
	MsgConnect MsgType = 4
	// MsgData (P->R), first frame of a data connection: session id [16]byte.
	MsgData MsgType = 5
	// MsgPing and MsgPong (either way): empty body. Each side answers a PING
	// with a PONG; a control connection silent for ReadTimeout is dead.
	MsgPing MsgType = 6
	MsgPong MsgType = 7
	// MsgError (R->P): code uint16 | text (the rest, <= MaxErrorText bytes).
	// The relay closes the connection after it.
	MsgError MsgType = 8
)

// HELLO and WELCOME flags.
const (
	FlagProbe     = 1 << 0 // HELLO: dial me back at my observed IP and listen port
	FlagReachable = 1 << 0 // WELCOME: the probe connected: you do not need this relay
)

// Error codes of MsgError.
const (
	ErrCodeProtocol = 1 // malformed or unexpected message
	ErrCodeFull     = 2 // the relay serves its maximum number of peers
	ErrCodeNoPort   = 3 // no public port free in the configured range
	ErrCodeShutdown = 4 // the relay is stopping
)

// Torrent is one entry of a TORRENTS message.
type Torrent struct {
	InfoHash [20]byte
	Left     int64    // bytes still missing: 0 = seeding, -1 = unknown
	Trackers []string // announce URLs the relay announces to on the peer's behalf
	Private  bool     // BEP 27 private: trackers only, never the DHT
}

// FlagPrivate marks a private torrent in MsgTorrents (the high bit of its
// tracker count).
const FlagPrivate = 0x80

// Message is one decoded frame; which fields are meaningful depends on Type.
type Message struct {
	Type     MsgType
	Flags    uint8               // Hello, Welcome
	Port     uint16              // Hello
	PeerID   [20]byte            // Hello
	Addr     netip.AddrPort      // Welcome (public address), Connect (outside peer)
	Session  [SessionIDSize]byte // Connect, Data
	Torrents []Torrent           // Torrents
	Code     uint16              // Error
	Text     string              // Error
}

var errShort = errors.New("relay: truncated message")

// ReadMagic reads and checks the 8-byte connection preamble.
func ReadMagic(r io.Reader) error {
	var b [len(Magic)]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("relay: read magic: %w", err)
	}
	if string(b[:]) != Magic {
		return fmt.Errorf("relay: bad magic %q", b[:])
	}
	return nil
}

// ReadMessage reads one frame. The length is checked against MaxFrame before
// the body is allocated.
func ReadMessage(r io.Reader) (Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Message{}, fmt.Errorf("relay: read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return Message{}, fmt.Errorf("relay: frame length %d out of range 1..%d", n, MaxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Message{}, fmt.Errorf("relay: read frame body: %w", err)
	}
	return Decode(buf)
}

// WriteMessage encodes m as one frame and writes it with a single Write.
func WriteMessage(w io.Writer, m Message) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("relay: write %v: %w", m.Type, err)
	}
	return nil
}

// Encode returns m as a complete frame (length prefix included).
func (m Message) Encode() ([]byte, error) {
	b := make([]byte, 4, 64)
	b = append(b, byte(m.Type))
	switch m.Type {
	case MsgHello:
		b = append(b, m.Flags)
		b = binary.BigEndian.AppendUint16(b, m.Port)
		b = append(b, m.PeerID[:]...)
	case MsgWelcome:
		var err error
		if b, err = appendAddr(b, m.Addr); err != nil {
			return nil, err
		}
		b = append(b, m.Flags)
	case MsgTorrents:
		if len(m.Torrents) > MaxTorrents {
			return nil, fmt.Errorf("relay: %d torrents, at most %d", len(m.Torrents), MaxTorrents)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Torrents)))
		for _, t := range m.Torrents {
			if len(t.Trackers) > MaxTrackers {
				return nil, fmt.Errorf("relay: %d trackers, at most %d", len(t.Trackers), MaxTrackers)
			}
			b = append(b, t.InfoHash[:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(t.Left))
			nt := byte(len(t.Trackers))
			if t.Private {
				nt |= FlagPrivate
			}
			b = append(b, nt)
			for _, u := range t.Trackers {
				if len(u) > MaxURLLen {
					return nil, fmt.Errorf("relay: tracker URL of %d bytes, at most %d", len(u), MaxURLLen)
				}
				b = binary.BigEndian.AppendUint16(b, uint16(len(u)))
				b = append(b, u...)
			}
		}
	case MsgConnect:
		b = append(b, m.Session[:]...)
		var err error
		if b, err = appendAddr(b, m.Addr); err != nil {
			return nil, err
		}
	case MsgData:
		b = append(b, m.Session[:]...)
	case MsgPing, MsgPong:
	case MsgError:
		if len(m.Text) > MaxErrorText {
			return nil, fmt.Errorf("relay: error text of %d bytes, at most %d", len(m.Text), MaxErrorText)
		}
		b = binary.BigEndian.AppendUint16(b, m.Code)
		b = append(b, m.Text...)
	default:
		return nil, fmt.Errorf("relay: cannot encode message type %d", m.Type)
	}
	if len(b)-4 > MaxFrame {
		return nil, fmt.Errorf("relay: %v frame of %d bytes exceeds %d", m.Type, len(b)-4, MaxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

func appendAddr(b []byte, ap netip.AddrPort) ([]byte, error) {
	if !ap.IsValid() {
		return nil, errors.New("relay: invalid address")
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		b = append(b, 4)
		s := a.As4()
		b = append(b, s[:]...)
	} else {
		b = append(b, 16)
		s := a.As16()
		b = append(b, s[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port()), nil
}

// reader consumes a frame body, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errShort
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) addr() netip.AddrPort {
	n := int(r.u8())
	if r.err != nil {
		return netip.AddrPort{}
	}
	if n != 4 && n != 16 {
		r.err = fmt.Errorf("relay: address length %d, want 4 or 16", n)
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(r.take(n))
	port := r.u16()
	return netip.AddrPortFrom(ip, port)
}

// Decode parses a frame's type and body (without the length prefix).
// Trailing bytes are an error except in ERROR, whose text is the rest.
func Decode(body []byte) (Message, error) {
	if len(body) == 0 {
		return Message{}, errShort
	}
	m := Message{Type: MsgType(body[0])}
	r := &reader{b: body[1:]}
	switch m.Type {
	case MsgHello:
		m.Flags = r.u8()
		m.Port = r.u16()
		copy(m.PeerID[:], r.take(20))
	case MsgWelcome:
		m.Addr = r.addr()
		m.Flags = r.u8()
	case MsgTorrents:
		n := int(r.u16())
		if n > MaxTorrents {
			return Message{}, fmt.Errorf("relay: %d torrents, at most %d", n, MaxTorrents)
		}
		if n > 0 {
			m.Torrents = make([]Torrent, 0, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			var t Torrent
			copy(t.InfoHash[:], r.take(20))
			t.Left = int64(r.u64())
			k := int(r.u8())
			t.Private, k = k&FlagPrivate != 0, k&^FlagPrivate
			if k > MaxTrackers {
				return Message{}, fmt.Errorf("relay: %d trackers, at most %d", k, MaxTrackers)
			}
			for j := 0; j < k && r.err == nil; j++ {
				l := int(r.u16())
				if l > MaxURLLen {
					return Message{}, fmt.Errorf("relay: tracker URL of %d bytes, at most %d", l, MaxURLLen)
				}
				if u := r.take(l); r.err == nil {
					t.Trackers = append(t.Trackers, string(u))
				}
			}
			m.Torrents = append(m.Torrents, t)
		}
	case MsgConnect:
		copy(m.Session[:], r.take(SessionIDSize))
		m.Addr = r.addr()
	case MsgData:
		copy(m.Session[:], r.take(SessionIDSize))
	case MsgPing, MsgPong:
	case MsgError:
		m.Code = r.u16()
		if len(r.b) > MaxErrorText {
			return Message{}, fmt.Errorf("relay: error text of %d bytes, at most %d", len(r.b), MaxErrorText)
		}
		m.Text = string(bytes.Clone(r.take(len(r.b))))
	default:
		return Message{}, fmt.Errorf("relay: unknown message type %d", m.Type)
	}
	if r.err != nil {
		return Message{}, fmt.Errorf("relay: decode %v: %w", m.Type, r.err)
	}
	if len(r.b) != 0 {
		return Message{}, fmt.Errorf("relay: %d trailing bytes after %v", len(r.b), m.Type)
	}
	return m, nil
}

// String names a message type for logs and errors.
func (t MsgType) String() string {
	switch t {
	case MsgHello:
		return "HELLO"
	case MsgWelcome:
		return "WELCOME"
	case MsgTorrents:
		return "TORRENTS"
	case MsgConnect:
		return "CONNECT"
	case MsgData:
		return "DATA"
	case MsgPing:
		return "PING"
	case MsgPong:
		return "PONG"
	case MsgError:
		return "ERROR"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}
