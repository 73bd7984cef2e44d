package hostile

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// attacker is one raw TCP connection speaking the wire protocol, scripted
// to misbehave. All fields are static after dial except closed, which is
// closed by the reader goroutine when the victim ends the connection.
type attacker struct {
	nc     net.Conn
	remote wire.Handshake
	closed chan struct{} // closed when a read from the victim fails
	msgs   chan wire.Message
}

// dialAttacker connects to addr and completes a handshake for infoHash
// (fast and extension bits set when fast is true). It returns an error when
// the victim refuses the handshake.
func dialAttacker(addr string, infoHash [20]byte, fast bool) (*attacker, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	hs := wire.Handshake{InfoHash: infoHash}
	copy(hs.PeerID[:], "-XX0001-")
	_, _ = rand.Read(hs.PeerID[8:])
	if fast {
		hs.SetFast()
		hs.SetExtended()
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(hs.Append(nil)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	remote, err := wire.ReadHandshake(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read handshake: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	a := &attacker{nc: nc, remote: remote, closed: make(chan struct{}), msgs: make(chan wire.Message, 1024)}
	go a.readLoop()
	return a, nil
}

func (a *attacker) readLoop() {
	defer close(a.closed)
	defer close(a.msgs)
	r := wire.NewReader(a.nc, 1<<20)
	for {
		_ = a.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
		m, err := r.Read()
		if err != nil {
			return
		}
		if len(m.Payload) > 0 {
			m.Payload = append([]byte(nil), m.Payload...)
		}
		select {
		case a.msgs <- m:
		default: // the test looks at a few messages only
		}
	}
}

// send writes raw bytes (errors are ignored: the victim may already have
// hung up, which is the point).
func (a *attacker) send(b []byte) {
	_ = a.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = a.nc.Write(b)
}

// sendMsg writes one well-formed message.
func (a *attacker) sendMsg(m wire.Message) { a.send(wire.AppendMessage(nil, m)) }

// frame builds <len><id><payload> with an honest length.
func frame(id byte, payload ...byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	return append(append(out, id), payload...)
}

// u32s encodes big-endian integers back to back.
func u32s(v ...uint32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.BigEndian.AppendUint32(out, x)
	}
	return out
}

// droppedWithin reports whether the victim closed the connection within d.
func (a *attacker) droppedWithin(d time.Duration) bool {
	select {
	case <-a.closed:
		return true
	case <-time.After(d):
		return false
	}
}

func (a *attacker) Close() { a.nc.Close() }

// waitMsg waits up to d for a message with id from the victim.
func (a *attacker) waitMsg(id wire.ID, d time.Duration) (wire.Message, bool) {
	end := time.After(d)
	for {
		select {
		case m, ok := <-a.msgs:
			if !ok {
				return wire.Message{}, false
			}
			if !m.Keepalive && m.ID == id {
				return m, true
			}
		case <-end:
			return wire.Message{}, false
		}
	}
}
