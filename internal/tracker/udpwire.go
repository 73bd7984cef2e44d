package tracker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// UDP tracker protocol (BEP 15). All integers are big-endian.
//
//	connect request  (16): protocol_id u64 = udpProtocolID | action u32 = 0 | txid u32
//	connect response (16): action u32 = 0 | txid u32 | connection_id u64
//	announce request (98): connection_id u64 | action u32 = 1 | txid u32 | info_hash [20] |
//	                       peer_id [20] | downloaded u64 | left u64 | uploaded u64 | event u32 |
//	                       ip u32 (0 = source address) | key u32 | num_want i32 (-1 default) | port u16
//	                       [BEP 41 options: 0x2 len data (URLData, path+query in ≤255-byte chunks)]
//	announce response (20+): action u32 = 1 | txid u32 | interval u32 | leechers u32 | seeders u32 |
//	                       peers: 6 bytes each (IPv4 tracker) or 18 bytes each (IPv6 tracker)
//	scrape request (16+20n): connection_id u64 | action u32 = 2 | txid u32 | info_hash [20] × n (n ≤ 74)
//	scrape response (8+12n): action u32 = 2 | txid u32 | (seeders u32 | completed u32 | leechers u32) × n
//	error response    (8+): action u32 = 3 | txid u32 | message (rest of packet)
//
// Flow: connect once per tracker address and reuse the connection id for
// UDPConnIDTTL; then announce/scrape with it. Every request carries a fresh
// random transaction id; replies whose txid does not match are ignored.
const (
	udpProtocolID uint64 = 0x41727101980

	udpActionConnect  uint32 = 0
	udpActionAnnounce uint32 = 1
	udpActionScrape   uint32 = 2
	udpActionError    uint32 = 3

	udpConnectLen     = 16
	udpAnnounceLen    = 98
	udpAnnounceHdrLen = 20 // action, txid, interval, leechers, seeders
	udpScrapeEntryLen = 12
	udpMaxScrape      = 74 // hashes per scrape request (BEP 15)
	udpOptURLData     = 0x2
	udpMaxURLData     = 1024 // we refuse longer path+query
	udpMaxPacket      = 64 << 10
)

var (
	errUDPShort      = errors.New("udp tracker: packet too short")
	errUDPTxMismatch = errors.New("udp tracker: transaction id mismatch")
)

func udpConnectRequest(txid uint32) []byte {
	b := make([]byte, udpConnectLen)
	binary.BigEndian.PutUint64(b[0:], udpProtocolID)
	binary.BigEndian.PutUint32(b[8:], udpActionConnect)
	binary.BigEndian.PutUint32(b[12:], txid)
	return b
}

// udpAnnounceRequest builds an announce packet; urlData is the tracker URL's
// path and query for BEP 41 (empty: no option sent).
func udpAnnounceRequest(connID uint64, txid uint32, req *AnnounceRequest, urlData string) []byte {
	up, down, left := req.counters()
	b := make([]byte, udpAnnounceLen, udpAnnounceLen+len(urlData)+2*(len(urlData)/255+1))
	be := binary.BigEndian
	be.PutUint64(b[0:], connID)
	be.PutUint32(b[8:], udpActionAnnounce)
	be.PutUint32(b[12:], txid)
	copy(b[16:36], req.InfoHash[:])
	copy(b[36:56], req.PeerID[:])
	be.PutUint64(b[56:], uint64(down))
	be.PutUint64(b[64:], uint64(left))
	be.PutUint64(b[72:], uint64(up))
	be.PutUint32(b[80:], req.Event.udpCode())
	if ip := req.IP.Unmap(); ip.Is4() {
		a := ip.As4()
		copy(b[84:88], a[:])
	}
	be.PutUint32(b[88:], req.Key)
	nw := int32(-1)
	if req.NumWant >= 0 {
		nw = int32(min(req.NumWant, 1<<31-1))
	}
	be.PutUint32(b[92:], uint32(nw))
	be.PutUint16(b[96:], req.Port)
	for d := urlData; d != ""; {
		n := min(len(d), 255)
		b = append(b, udpOptURLData, byte(n))
		b = append(b, d[:n]...)
		d = d[n:]
	}
	return b
}

func udpScrapeRequest(connID uint64, txid uint32, hashes [][20]byte) []byte {
	b := make([]byte, 16, 16+20*len(hashes))
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], udpActionScrape)
	binary.BigEndian.PutUint32(b[12:], txid)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// parseUDPResponse checks a reply's header against the transaction id and
// expected action and returns the payload after the 8-byte header. An
// error reply (action 3) yields *FailureError.
func parseUDPResponse(b []byte, txid, want uint32) ([]byte, error) {
	if len(b) < 8 {
		return nil, errUDPShort
	}
	action := binary.BigEndian.Uint32(b[0:])
	if binary.BigEndian.Uint32(b[4:]) != txid {
		return nil, errUDPTxMismatch
	}
	if action == udpActionError {
		msg := b[8:]
		if len(msg) > maxTextLen {
			msg = msg[:maxTextLen]
		}
		msg = bytes.TrimRight(msg, "\x00")
		return nil, &FailureError{Reason: string(bytes.ToValidUTF8(msg, []byte(string(utf8.RuneError))))}
	}
	if action != want {
		return nil, fmt.Errorf("udp tracker: reply has action %d, want %d", action, want)
	}
	return b[8:], nil
}

// parseUDPConnect returns the connection id from a connect reply's payload.
func parseUDPConnect(p []byte) (uint64, error) {
	if len(p) < 8 {
		return 0, errUDPShort
	}
	return binary.BigEndian.Uint64(p), nil
}

// parseUDPAnnounce parses an announce reply's payload. v6 says the tracker
// was reached over IPv6, so peers are 18 bytes each (BEP 15).
func parseUDPAnnounce(p []byte, v6 bool) (*AnnounceResponse, error) {
	if len(p) < udpAnnounceHdrLen-8 {
		return nil, errUDPShort
	}
	be := binary.BigEndian
	interval := int64(be.Uint32(p[0:]))
	r := &AnnounceResponse{
		Leechers: int(min(be.Uint32(p[4:]), 1<<31-1)),
		Seeders:  int(min(be.Uint32(p[8:]), 1<<31-1)),
	}
	r.Interval, r.MinInterval = clampIntervals(interval, 0)
	ps := newPeerSet(MaxPeers)
	if err := ps.addCompact(p[12:], v6); err != nil {
		return nil, fmt.Errorf("udp tracker: %w", err)
	}
	r.Peers = ps.peers
	return r, nil
}

// parseUDPScrape parses a scrape reply's payload for hashes (in request
// order) into out. A tracker may answer fewer entries than asked.
func parseUDPScrape(p []byte, hashes [][20]byte, out map[[20]byte]ScrapeResult) error {
	if len(p)%udpScrapeEntryLen != 0 {
		return fmt.Errorf("udp tracker: scrape reply of %d bytes is not a multiple of %d", len(p), udpScrapeEntryLen)
	}
	be := binary.BigEndian
	for i, h := range hashes {
		off := i * udpScrapeEntryLen
		if off+udpScrapeEntryLen > len(p) {
			break
		}
		out[h] = ScrapeResult{
			Seeders:   int(min(be.Uint32(p[off:]), 1<<31-1)),
			Completed: int(min(be.Uint32(p[off+4:]), 1<<31-1)),
			Leechers:  int(min(be.Uint32(p[off+8:]), 1<<31-1)),
		}
	}
	return nil
}
