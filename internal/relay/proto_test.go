package relay

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func sampleMessages() []Message {
	var sid [SessionIDSize]byte
	copy(sid[:], "0123456789abcdef")
	var id [20]byte
	copy(id[:], "-SH0001-abcdefghijkl")
	return []Message{
		{Type: MsgHello, Flags: FlagProbe, Port: 6881, PeerID: id},
		{Type: MsgWelcome, Addr: netip.MustParseAddrPort("198.18.100.10:30001")},
		{Type: MsgWelcome, Addr: netip.MustParseAddrPort("[2001:db8::1]:30002"), Flags: FlagReachable},
		{Type: MsgTorrents},
		{Type: MsgTorrents, Torrents: []Torrent{
			{InfoHash: [20]byte{1, 2, 3}, Left: 0, Trackers: []string{"http://198.18.100.10:6969/announce", "udp://t:1"}},
			{InfoHash: [20]byte{9}, Left: -1},
			{InfoHash: [20]byte{7}, Left: 5, Trackers: []string{"udp://p:2"}, Private: true},
			{InfoHash: [20]byte{8}, Left: 1 << 40, Trackers: []string{""}},
		}},
		{Type: MsgConnect, Session: sid, Addr: netip.MustParseAddrPort("198.18.100.20:51413")},
		{Type: MsgData, Session: sid},
		{Type: MsgPing},
		{Type: MsgPong},
		{Type: MsgError, Code: ErrCodeFull, Text: "relay full"},
		{Type: MsgError, Code: ErrCodeProtocol},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type.String(), func(t *testing.T) {
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if n := binary.BigEndian.Uint32(b); int(n) != len(b)-4 {
				t.Fatalf("length prefix %d, body %d", n, len(b)-4)
			}
			got, err := ReadMessage(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("got %+v\nwant %+v", got, m)
			}
		})
	}
}

// TestLayout pins the byte layout documented at the constants.
func TestLayout(t *testing.T) {
	var id [20]byte
	id[0] = 0xAA
	b, _ := Message{Type: MsgHello, Flags: 1, Port: 0x1AE1, PeerID: id}.Encode()
	want := append([]byte{0, 0, 0, 24, 1, 1, 0x1A, 0xE1}, id[:]...)
	if !bytes.Equal(b, want) {
		t.Fatalf("HELLO = %x, want %x", b, want)
	}
	b, _ = Message{Type: MsgWelcome, Addr: netip.MustParseAddrPort("1.2.3.4:258")}.Encode()
	if want := []byte{0, 0, 0, 9, 2, 4, 1, 2, 3, 4, 1, 2, 0}; !bytes.Equal(b, want) {
		t.Fatalf("WELCOME = %x, want %x", b, want)
	}
	b, _ = Message{Type: MsgError, Code: 2, Text: "x"}.Encode()
	if want := []byte{0, 0, 0, 4, 8, 0, 2, 'x'}; !bytes.Equal(b, want) {
		t.Fatalf("ERROR = %x, want %x", b, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	frame := func(typ byte, body ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+1))
		return append(append(b, typ), body...)
	}
	torrents := func(n uint16, extra ...byte) []byte {
		return append(binary.BigEndian.AppendUint16(nil, n), extra...)
	}
	oneTorrent := func(ntrackers byte, urlLen uint16) []byte {
		b := torrents(1, make([]byte, 28)...)
		b = append(b, ntrackers)
		return binary.BigEndian.AppendUint16(b, urlLen)
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"zero length", []byte{0, 0, 0, 0}, "out of range"},
		{"huge length", []byte{0x7f, 0, 0, 0}, "out of range"},
		{"truncated body", []byte{0, 0, 0, 5, 1}, "read frame body"},
		{"unknown type", frame(99), "unknown message type"},
		{"short hello", frame(byte(MsgHello), 1, 2), "truncated"},
		{"trailing", frame(byte(MsgPing), 0), "trailing"},
		{"bad addr len", frame(byte(MsgWelcome), 5, 1, 2, 3, 4, 5, 0, 1, 0), "address length"},
		{"too many torrents", frame(byte(MsgTorrents), torrents(MaxTorrents+1)...), "torrents"},
		{"torrent count lies", frame(byte(MsgTorrents), torrents(3)...), "truncated"},
		{"too many trackers", frame(byte(MsgTorrents), oneTorrent(MaxTrackers+1, 0)...), "trackers"},
		{"url too long", frame(byte(MsgTorrents), oneTorrent(1, MaxURLLen+1)...), "URL"},
		{"error text too long", frame(byte(MsgError), append([]byte{0, 1}, bytes.Repeat([]byte{'x'}, MaxErrorText+1)...)...), "error text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, m := range []Message{
		{Type: 42},
		{Type: MsgWelcome},
		{Type: MsgTorrents, Torrents: make([]Torrent, MaxTorrents+1)},
		{Type: MsgTorrents, Torrents: []Torrent{{Trackers: make([]string, MaxTrackers+1)}}},
		{Type: MsgTorrents, Torrents: []Torrent{{Trackers: []string{strings.Repeat("u", MaxURLLen+1)}}}},
		{Type: MsgError, Text: strings.Repeat("e", MaxErrorText+1)},
	} {
		if _, err := m.Encode(); err == nil {
			t.Errorf("Encode(%v) accepted a bad message", m.Type)
		}
	}
	// the largest legal TORRENTS fits in a frame
	big := Message{Type: MsgTorrents}
	for i := 0; i < MaxTorrents; i++ {
		tr := Torrent{}
		for j := 0; j < MaxTrackers; j++ {
			tr.Trackers = append(tr.Trackers, strings.Repeat("u", MaxURLLen))
		}
		big.Torrents = append(big.Torrents, tr)
	}
	if _, err := big.Encode(); err != nil {
		t.Fatalf("largest TORRENTS: %v", err)
	}
}

func TestMagic(t *testing.T) {
	if err := ReadMagic(strings.NewReader(Magic)); err != nil {
		t.Fatal(err)
	}
	if err := ReadMagic(strings.NewReader("\x13BitTorrent protocol")); err == nil {
		t.Fatal("bad magic accepted")
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to the
// same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.Encode()
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			return
		}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if m.Type == MsgWelcome || m.Type == MsgConnect {
			// an IPv4-mapped IPv6 address re-encodes as IPv4
			m2, err := Decode(b[4:])
			if err != nil || !reflect.DeepEqual(m2.Addr, netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())) {
				t.Fatalf("re-decode: %+v, %v", m2, err)
			}
			return
		}
		if !bytes.Equal(b[4:], body) {
			t.Fatalf("re-encoded %x, input %x", b[4:], body)
		}
	})
}
