package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// NAT-PMP (RFC 6886). All messages are UDP datagrams to the gateway's port
// 5351; integers are big-endian.
//
//	external address request:  version 0 | opcode 0                            (2 bytes)
//	external address response: version 0 | opcode 128 | result uint16 |
//	                           epoch uint32 | external IPv4 [4]byte              (12 bytes)
//	mapping request:           version 0 | opcode 1 (UDP) or 2 (TCP) | reserved uint16 |
//	                           internal port uint16 | suggested external port uint16 |
//	                           lifetime uint32 seconds (0 = delete)              (12 bytes)
//	mapping response:          version 0 | opcode 128+op | result uint16 | epoch uint32 |
//	                           internal port uint16 | external port uint16 | lifetime uint32 (16 bytes)
//
// A client retransmits a request after 250 ms, doubling the wait each time.
const (
	NATPMPPort       = 5351
	natpmpVersion    = 0
	opExternal       = 0
	opMapUDP         = 1
	opMapTCP         = 2
	natpmpFirstWait  = 250 * time.Millisecond
	natpmpMaxTries   = 5 // 250+500+1000+2000+4000 ms: under 8 s in all
	natpmpMaxReplyLn = 16
)

// NAT-PMP result codes.
const (
	PMPSuccess            = 0
	PMPUnsupportedVersion = 1
	PMPNotAuthorized      = 2
	PMPNetworkFailure     = 3
	PMPOutOfResources     = 4
	PMPUnsupportedOpcode  = 5
)

// PMPError is a non-zero NAT-PMP result code.
type PMPError struct{ Code uint16 }

func (e *PMPError) Error() string {
	names := map[uint16]string{1: "unsupported version", 2: "not authorized/refused", 3: "network failure",
		4: "out of resources", 5: "unsupported opcode"}
	if n, ok := names[e.Code]; ok {
		return "nat-pmp: " + n
	}
	return fmt.Sprintf("nat-pmp: result code %d", e.Code)
}

// ErrNoReply means the gateway never answered: no NAT-PMP there.
var ErrNoReply = errors.New("nat-pmp: no reply from gateway")

// NATPMP is a client for one gateway. Safe for concurrent use: every call
// opens its own socket.
type NATPMP struct {
	Gateway netip.AddrPort // static; normally gateway:5351
	// FirstWait and Tries override the retransmission schedule (tests); 0 = RFC values.
	FirstWait time.Duration
	Tries     int
}

// Mapping is a port mapping granted by a gateway.
type Mapping struct {
	Protocol     string // "tcp" or "udp"
	InternalPort uint16
	External     netip.AddrPort // external address (when known) and port
	Lifetime     time.Duration  // as granted; renew before it runs out
	Method       string         // "nat-pmp" or "upnp"
}

// ExternalAddress asks the gateway for its public IPv4 address.
func (c *NATPMP) ExternalAddress(ctx context.Context) (netip.Addr, error) {
	resp, err := c.exchange(ctx, []byte{natpmpVersion, opExternal}, 12)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4([4]byte(resp[8:12])), nil
}

// AddPortMapping asks for external→internal port mapping of protocol
// ("tcp"/"udp") for lifetime; external is a suggestion the gateway may
// ignore. The mapping goes to the address this host reaches the gateway from.
func (c *NATPMP) AddPortMapping(ctx context.Context, protocol string, internal, external uint16, lifetime time.Duration) (Mapping, error) {
	if lifetime <= 0 {
		return Mapping{}, errors.New("nat-pmp: lifetime must be positive (use DeletePortMapping)")
	}
	return c.mapReq(ctx, protocol, internal, external, lifetime)
}

// DeletePortMapping removes the mapping of internal port for protocol.
func (c *NATPMP) DeletePortMapping(ctx context.Context, protocol string, internal uint16) error {
	_, err := c.mapReq(ctx, protocol, internal, 0, 0)
	return err
}

func (c *NATPMP) mapReq(ctx context.Context, protocol string, internal, external uint16, lifetime time.Duration) (Mapping, error) {
	var op byte
	switch protocol {
	case "tcp":
		op = opMapTCP
	case "udp":
		op = opMapUDP
	default:
		return Mapping{}, fmt.Errorf("nat-pmp: protocol %q, want tcp or udp", protocol)
	}
	if internal == 0 {
		return Mapping{}, errors.New("nat-pmp: internal port 0")
	}
	secs := uint32(lifetime / time.Second)
	if lifetime > 0 && secs == 0 {
		secs = 1
	}
	req := make([]byte, 12)
	req[0], req[1] = natpmpVersion, op
	binary.BigEndian.PutUint16(req[4:], internal)
	binary.BigEndian.PutUint16(req[6:], external)
	binary.BigEndian.PutUint32(req[8:], secs)
	resp, err := c.exchange(ctx, req, 16)
	if err != nil {
		return Mapping{}, err
	}
	if got := binary.BigEndian.Uint16(resp[8:]); got != internal {
		return Mapping{}, fmt.Errorf("nat-pmp: reply for internal port %d, asked %d", got, internal)
	}
	return Mapping{
		Protocol: protocol, InternalPort: internal, Method: "nat-pmp",
		External: netip.AddrPortFrom(netip.Addr{}, binary.BigEndian.Uint16(resp[10:])),
		Lifetime: time.Duration(binary.BigEndian.Uint32(resp[12:])) * time.Second,
	}, nil
}

// exchange sends req and waits for a reply of exactly n bytes whose opcode
// is req's plus 128, retransmitting on the RFC's schedule.
func (c *NATPMP) exchange(ctx context.Context, req []byte, n int) ([]byte, error) {
	if !c.Gateway.IsValid() || !c.Gateway.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("nat-pmp: gateway %v is not an IPv4 address", c.Gateway)
	}
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(c.Gateway))
	if err != nil {
		return nil, fmt.Errorf("nat-pmp: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	wait, tries := c.FirstWait, c.Tries
	if wait <= 0 {
		wait = natpmpFirstWait
	}
	if tries <= 0 {
		tries = natpmpMaxTries
	}
	buf := make([]byte, 64)
	for i := 0; i < tries; i++ {
		if _, err := conn.Write(req); err != nil {
			return nil, fmt.Errorf("nat-pmp: send: %w", err)
		}
		deadline := time.Now().Add(wait)
		for {
			conn.SetReadDeadline(deadline)
			k, err := conn.Read(buf)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}
				// ICMP port unreachable shows up as a read error: keep waiting
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
				continue
			}
			resp, perr := parsePMPReply(buf[:k], req[1], n)
			var pe *PMPError
			if errors.As(perr, &pe) {
				return nil, perr
			}
			if perr != nil {
				continue // not ours (RFC: ignore)
			}
			return resp, nil
		}
		wait *= 2
	}
	return nil, ErrNoReply
}

// parsePMPReply checks a reply's version, opcode, length and result code.
func parsePMPReply(b []byte, op byte, n int) ([]byte, error) {
	if len(b) < 4 {
		return nil, errors.New("nat-pmp: short reply")
	}
	if b[0] != natpmpVersion || b[1] != op+128 {
		return nil, fmt.Errorf("nat-pmp: reply version %d opcode %d", b[0], b[1])
	}
	if code := binary.BigEndian.Uint16(b[2:]); code != PMPSuccess {
		return nil, &PMPError{Code: code}
	}
	if len(b) < n {
		return nil, fmt.Errorf("nat-pmp: reply of %d bytes, want %d", len(b), n)
	}
	return b[:n], nil
}
