package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"
)

// BEP 15 over UDP. All integers big-endian.
//
//	connect request   (16 bytes): protocol_id u64 = 0x41727101980 | action u32 = 0 | transaction_id u32
//	connect response  (16 bytes): action u32 = 0 | transaction_id u32 | connection_id u64
//	announce request  (98 bytes, longer allowed for BEP 41 options, which are ignored):
//	    connection_id u64 | action u32 = 1 | transaction_id u32 | info_hash [20] | peer_id [20] |
//	    downloaded i64 | left i64 | uploaded i64 | event u32 (0 none,1 completed,2 started,3 stopped) |
//	    ip u32 (ignored: the source address is used) | key u32 | num_want i32 (-1 default) | port u16
//	announce response (20 + 6n or 20 + 18n bytes, by the socket family of the client):
//	    action u32 = 1 | transaction_id u32 | interval u32 | leechers u32 | seeders u32 | peers
//	scrape request    (16 + 20n bytes, 1 <= n <= 64):
//	    connection_id u64 | action u32 = 2 | transaction_id u32 | info_hash [20] * n
//	scrape response   (8 + 12n bytes): action u32 = 2 | transaction_id u32 | (seeders u32 | completed u32 | leechers u32) * n
//	error response    (8 + len bytes): action u32 = 3 | transaction_id u32 | message
//
// Flow: connect → connection id (valid connIDLifetime) → announce/scrape
// with that id; on an invalid or expired id the packet is dropped (no
// answer, so spoofed sources get nothing reflected at them); the client
// times out and connects again.
//
// Connection ids are stateless: id = issued u32 (unix seconds) ||
// SHA-256(key || issued || client IP)[:4] (key = SHA-256(secret)). The server checks the MAC
// and that issued lies within the lifetime, so an id can be neither forged
// (without the secret) nor used past its lifetime, and no per-connection
// state is kept. Ids are bound to the client IP, not the port, as several
// clients send from more than one socket. The secret is random per process
// unless given: instances behind one address share one via UDPConfig.Secret
// or the store's SecretSharer (the Redis store keeps one in Redis).
const (
	udpProtocolID = 0x41727101980

	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3

	connectLen     = 16
	announceLen    = 98
	scrapeMinLen   = 16 + 20
	maxUDPPacket   = 2048 // read buffer; larger datagrams are truncated and dropped
	connIDLifetime = 2 * time.Minute
	connIDSkew     = 5 * time.Second // tolerate ids "from the future" by this much (clock steps)

	// Peers per UDP answer are capped so the datagram stays under ~1280 bytes.
	maxUDPPeers4 = 200
	maxUDPPeers6 = 70
)

// UDPServer is the BEP 15 frontend.
type UDPServer struct {
	t     *Tracker // static after construction
	key   [32]byte // SHA-256 of the secret; static after construction
	drops func()   // counts a dropped packet
}

// NewUDPServer returns a UDP frontend for t. secret keys connection ids;
// if empty a random one is made (ids then only work with this process).
func NewUDPServer(t *Tracker, secret []byte) (*UDPServer, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("udp tracker secret: %w", err)
		}
	}
	s := &UDPServer{t: t, key: sha256.Sum256(secret)}
	s.drops = func() { t.metrics.dropped.Add(1) }
	return s, nil
}

// connID computes the connection id for ip issued at unix second ts:
// ts || SHA-256(key || ts || ip16)[:4]. A secret-prefix hash is a sound
// MAC here because the message has one fixed length (length extension
// needs a longer message), and it costs a single SHA-256 block.
func (s *UDPServer) connID(ip netip.Addr, ts uint32) uint64 {
	var buf [32 + 4 + 16]byte
	copy(buf[:32], s.key[:])
	binary.BigEndian.PutUint32(buf[32:36], ts)
	a := ip.Unmap().As16()
	copy(buf[36:], a[:])
	mac := sha256.Sum256(buf[:])
	return uint64(ts)<<32 | uint64(binary.BigEndian.Uint32(mac[:4]))
}

// validConnID reports whether id was issued by this secret to ip within
// the lifetime ending now.
func (s *UDPServer) validConnID(id uint64, ip netip.Addr, now time.Time) bool {
	ts := uint32(id >> 32)
	issued := time.Unix(int64(ts), 0)
	if now.Sub(issued) > connIDLifetime || issued.Sub(now) > connIDSkew {
		return false
	}
	var got, want [8]byte
	binary.BigEndian.PutUint64(got[:], id)
	binary.BigEndian.PutUint64(want[:], s.connID(ip, ts))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Serve reads datagrams from conn until ctx ends, with one worker per CPU.
// It does not close conn.
func (s *UDPServer) Serve(ctx context.Context, conn *net.UDPConn) error {
	workers := max(2, runtime.GOMAXPROCS(0))
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	errc := make(chan error, workers)
	for range workers {
		go func() { errc <- s.worker(ctx, conn) }()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return first
}

func (s *UDPServer) worker(ctx context.Context, conn *net.UDPConn) error {
	in := make([]byte, maxUDPPacket)
	out := make([]byte, 0, maxUDPPacket)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("udp tracker read: %w", err)
		}
		resp := s.Handle(ctx, in[:n], from, out[:0])
		if resp == nil {
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(resp, from); err != nil && ctx.Err() == nil {
			s.t.log.Debug("udp tracker write", "to", from, "err", err)
		}
	}
}

// Handle answers one datagram pkt from `from`, appending the response to
// out. It returns nil when the packet is to be dropped without answer.
func (s *UDPServer) Handle(ctx context.Context, pkt []byte, from netip.AddrPort, out []byte) []byte {
	if len(pkt) < connectLen || len(pkt) >= maxUDPPacket {
		s.drops()
		return nil
	}
	ip := from.Addr().Unmap()
	now := s.t.cfg.Now()
	id := binary.BigEndian.Uint64(pkt[0:8])
	action := binary.BigEndian.Uint32(pkt[8:12])
	tid := pkt[12:16]
	if action == actionConnect {
		if id != udpProtocolID {
			s.drops()
			return nil
		}
		s.t.metrics.connects.Add(1)
		out = binary.BigEndian.AppendUint32(out, actionConnect)
		out = append(out, tid...)
		return binary.BigEndian.AppendUint64(out, s.connID(ip, uint32(now.Unix())))
	}
	if action != actionAnnounce && action != actionScrape {
		s.drops()
		return nil
	}
	if !s.validConnID(id, ip, now) {
		s.t.metrics.errors[ErrConnectionID].Add(1)
		s.drops()
		return nil
	}
	if action == actionAnnounce {
		return s.announce(ctx, pkt, from, tid, out)
	}
	return s.scrape(ctx, pkt, ip, tid, out)
}

func udpError(out []byte, tid []byte, f *Failure) []byte {
	out = binary.BigEndian.AppendUint32(out[:0], actionError)
	out = append(out, tid...)
	return append(out, f.Reason...)
}

func (s *UDPServer) announce(ctx context.Context, pkt []byte, from netip.AddrPort, tid, out []byte) []byte {
	if len(pkt) < announceLen {
		s.t.metrics.announces[ProtoUDP].Add(1)
		s.t.metrics.errors[ErrMalformed].Add(1)
		return udpError(out, tid, failf(ErrMalformed, "announce packet too short"))
	}
	ip := from.Addr().Unmap()
	req := AnnounceRequest{
		InfoHash:   InfoHash(pkt[16:36]),
		Downloaded: int64(binary.BigEndian.Uint64(pkt[56:64])),
		Left:       int64(binary.BigEndian.Uint64(pkt[64:72])),
		Uploaded:   int64(binary.BigEndian.Uint64(pkt[72:80])),
		Addr:       netip.AddrPortFrom(ip, binary.BigEndian.Uint16(pkt[96:98])),
		NumWant:    int(int32(binary.BigEndian.Uint32(pkt[92:96]))),
	}
	ev := binary.BigEndian.Uint32(pkt[80:84])
	if ev > uint32(EventStopped) {
		s.t.metrics.announces[ProtoUDP].Add(1)
		s.t.metrics.errors[ErrMalformed].Add(1)
		return udpError(out, tid, failf(ErrMalformed, "unknown event %d", ev))
	}
	req.Event = Event(ev)
	limit := maxUDPPeers4
	if !ip.Is4() {
		limit = maxUDPPeers6
	}
	if req.NumWant > limit {
		req.NumWant = limit
	}
	// Reserve the 20-byte header, let the store append peers after it.
	out = append(out[:0], make([]byte, 20)...)
	resp, err := s.t.Announce(ctx, &req, out, ProtoUDP)
	if err != nil {
		return udpError(out, tid, AsFailure(err))
	}
	out = resp.Peers
	binary.BigEndian.PutUint32(out[0:], actionAnnounce)
	copy(out[4:8], tid)
	binary.BigEndian.PutUint32(out[8:], uint32(resp.Interval/time.Second))
	binary.BigEndian.PutUint32(out[12:], resp.Stats.Leechers)
	binary.BigEndian.PutUint32(out[16:], resp.Stats.Seeders)
	return out
}

func (s *UDPServer) scrape(ctx context.Context, pkt []byte, ip netip.Addr, tid, out []byte) []byte {
	body := pkt[16:]
	if len(body) == 0 || len(body)%20 != 0 || len(body)/20 > MaxScrapeHashes {
		s.t.metrics.scrapes[ProtoUDP].Add(1)
		s.t.metrics.errors[ErrMalformed].Add(1)
		return udpError(out, tid, failf(ErrMalformed, "scrape needs 1 to %d whole 20-byte info-hashes", MaxScrapeHashes))
	}
	hashes := make([]InfoHash, len(body)/20)
	for i := range hashes {
		hashes[i] = InfoHash(body[i*20 : i*20+20])
	}
	st, err := s.t.Scrape(ctx, ip, hashes, ProtoUDP)
	if err != nil {
		return udpError(out, tid, AsFailure(err))
	}
	out = binary.BigEndian.AppendUint32(out[:0], actionScrape)
	out = append(out, tid...)
	for _, x := range st {
		out = binary.BigEndian.AppendUint32(out, x.Seeders)
		out = binary.BigEndian.AppendUint32(out, x.Downloaded)
		out = binary.BigEndian.AppendUint32(out, x.Leechers)
	}
	return out
}
