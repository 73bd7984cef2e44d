package server

import (
	"context"
	"net/netip"
	"testing"
)

// BenchmarkUDPHandleAnnounce measures one UDP announce through the whole
// server path except the socket: connection-id check, validation, store.
func BenchmarkUDPHandleAnnounce(b *testing.B) {
	tr, err := New(NewMemoryStore(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	s, _ := NewUDPServer(tr, []byte("bench"))
	from := netip.MustParseAddrPort("127.0.0.1:1")
	id := udpConnectB(s, from)
	const torrents, peers = 1000, 20
	pkts := make([][]byte, 0, torrents*peers)
	for t := range torrents {
		for p := range peers {
			pkts = append(pkts, announcePkt(id, 1, InfoHash{byte(t), byte(t >> 8)}, int64(p%5), 0, 50, uint16(1024+p)))
		}
	}
	out := make([]byte, 0, 2048)
	for _, p := range pkts {
		s.Handle(context.Background(), p, from, out[:0])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Handle(context.Background(), pkts[(i*7919)%len(pkts)], from, out[:0])
	}
}

func udpConnectB(s *UDPServer, from netip.AddrPort) uint64 {
	r := s.Handle(context.Background(), connectPkt(1), from, nil)
	return uint64(r[8])<<56 | uint64(r[9])<<48 | uint64(r[10])<<40 | uint64(r[11])<<32 |
		uint64(r[12])<<24 | uint64(r[13])<<16 | uint64(r[14])<<8 | uint64(r[15])
}
