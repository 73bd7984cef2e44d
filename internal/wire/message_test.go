package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

func hexb(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func be32(v uint32) []byte        { return binary.BigEndian.AppendUint32(nil, v) }

var messageCases = []struct {
	name string
	m    Message
	wire []byte
}{
	{"keepalive", Message{Keepalive: true}, be32(0)},
	{"choke", Message{ID: Choke}, hexb(be32(1), []byte{0})},
	{"unchoke", Message{ID: Unchoke}, hexb(be32(1), []byte{1})},
	{"interested", Message{ID: Interested}, hexb(be32(1), []byte{2})},
	{"not-interested", Message{ID: NotInterested}, hexb(be32(1), []byte{3})},
	{"have", Message{ID: Have, Index: 0x01020304}, hexb(be32(5), []byte{4}, be32(0x01020304))},
	{"bitfield", Message{ID: Bitfield, Payload: []byte{0xff, 0x80}}, hexb(be32(3), []byte{5, 0xff, 0x80})},
	{"request", Message{ID: Request, Index: 7, Begin: 16384, Length: 16384},
		hexb(be32(13), []byte{6}, be32(7), be32(16384), be32(16384))},
	{"piece", Message{ID: Piece, Index: 9, Begin: 32768, Payload: []byte("block")},
		hexb(be32(14), []byte{7}, be32(9), be32(32768), []byte("block"))},
	{"piece-empty", Message{ID: Piece, Index: 1, Begin: 2, Payload: []byte{}},
		hexb(be32(9), []byte{7}, be32(1), be32(2))},
	{"cancel", Message{ID: Cancel, Index: 1, Begin: 2, Length: 3}, hexb(be32(13), []byte{8}, be32(1), be32(2), be32(3))},
	{"port", Message{ID: Port, Port: 6881}, hexb(be32(3), []byte{9, 0x1a, 0xe1})},
	{"suggest", Message{ID: Suggest, Index: 42}, hexb(be32(5), []byte{13}, be32(42))},
	{"have-all", Message{ID: HaveAll}, hexb(be32(1), []byte{14})},
	{"have-none", Message{ID: HaveNone}, hexb(be32(1), []byte{15})},
	{"reject", Message{ID: Reject, Index: 4, Begin: 5, Length: 6}, hexb(be32(13), []byte{16}, be32(4), be32(5), be32(6))},
	{"allowed-fast", Message{ID: AllowedFast, Index: 1059}, hexb(be32(5), []byte{17}, be32(1059))},
	{"extended", Message{ID: Extended, ExtID: 3, Payload: []byte("d1:ai1ee")},
		hexb(be32(10), []byte{20, 3}, []byte("d1:ai1ee"))},
	{"extended-empty", Message{ID: Extended, ExtID: 0, Payload: []byte{}}, hexb(be32(2), []byte{20, 0})},
	{"unknown", Message{ID: 99, Payload: []byte{1, 2}}, hexb(be32(3), []byte{99, 1, 2})},
}

func equalMessage(a, b Message) bool {
	return a.Keepalive == b.Keepalive && a.ID == b.ID && a.Index == b.Index && a.Begin == b.Begin &&
		a.Length == b.Length && a.ExtID == b.ExtID && a.Port == b.Port && bytes.Equal(a.Payload, b.Payload)
}

func TestMessageEncodeDecode(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendMessage([]byte("prefix"), tc.m)
			if !bytes.Equal(got[6:], tc.wire) || string(got[:6]) != "prefix" {
				t.Fatalf("AppendMessage = % x, want % x", got[6:], tc.wire)
			}
			r := NewReader(bytes.NewReader(tc.wire), 0)
			m, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if !equalMessage(m, tc.m) {
				t.Fatalf("Read = %+v, want %+v", m, tc.m)
			}
			if _, err := r.Read(); err != io.EOF {
				t.Fatalf("after last message: %v, want io.EOF", err)
			}
		})
	}
}

func TestMessageTruncated(t *testing.T) {
	for _, tc := range messageCases {
		for n := 1; n < len(tc.wire); n++ {
			_, err := NewReader(bytes.NewReader(tc.wire[:n]), 0).Read()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s cut to %d bytes: err %v, want io.ErrUnexpectedEOF", tc.name, n, err)
			}
		}
	}
}

func TestMessageWrongFixedLength(t *testing.T) {
	for _, id := range []ID{Choke, Unchoke, Interested, NotInterested, Have, Request, Cancel, Port, Suggest, HaveAll, HaveNone, Reject, AllowedFast} {
		want := fixedLen(id)
		for _, n := range []uint32{want - 1, want + 1, 100} {
			if n == 0 { // a zero length is a keep-alive
				continue
			}
			b := hexb(be32(n), []byte{byte(id)}, make([]byte, 200))
			_, err := NewReader(bytes.NewReader(b), 0).Read()
			if !errors.Is(err, ErrBadLength) {
				t.Errorf("%s with length %d: err %v, want ErrBadLength", id, n, err)
			}
		}
	}
	for name, b := range map[string][]byte{
		"piece-short":    hexb(be32(8), []byte{7}, make([]byte, 7)),
		"extended-no-id": hexb(be32(1), []byte{20}),
	} {
		if _, err := NewReader(bytes.NewReader(b), 0).Read(); !errors.Is(err, ErrBadLength) {
			t.Errorf("%s: err %v, want ErrBadLength", name, err)
		}
	}
}

func TestBlockTooLong(t *testing.T) {
	req := AppendMessage(nil, Message{ID: Request, Length: MaxBlock + 1})
	if _, err := NewReader(bytes.NewReader(req), 0).Read(); !errors.Is(err, ErrBlockTooLong) {
		t.Errorf("request: err %v", err)
	}
	ok := AppendMessage(nil, Message{ID: Request, Length: MaxBlock})
	if _, err := NewReader(bytes.NewReader(ok), 0).Read(); err != nil {
		t.Errorf("request of MaxBlock: %v", err)
	}
	piece := AppendMessage(nil, Message{ID: Piece, Payload: make([]byte, MaxBlock+1)})
	if _, err := NewReader(bytes.NewReader(piece), 1<<20).Read(); !errors.Is(err, ErrBlockTooLong) {
		t.Errorf("piece: err %v", err)
	}
}

// strictSource yields data and fails the test if read again after it is
// exhausted: it proves the Reader decided without reading further.
type strictSource struct {
	t    *testing.T
	data []byte
}

func (s *strictSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		s.t.Error("Reader read past the length prefix")
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestHugeLengthRejectedWithoutAllocating(t *testing.T) {
	for _, n := range []uint32{0xffffffff, 1 << 31, DefaultMaxLen + 1} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(&strictSource{t: t, data: be32(n)}, 0)
		_, err := r.Read()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMessageTooLong) {
			t.Fatalf("length %d: err %v, want ErrMessageTooLong", n, err)
		}
		if cap(r.buf) != 0 {
			t.Fatalf("length %d: payload buffer of %d bytes allocated", n, cap(r.buf))
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Fatalf("length %d: %d bytes allocated", n, d)
		}
	}
	// exactly maxLen is fine
	b := AppendMessage(nil, Message{ID: Bitfield, Payload: make([]byte, 99)})
	if _, err := NewReader(bytes.NewReader(b), 100).Read(); err != nil {
		t.Fatalf("length == maxLen: %v", err)
	}
	if _, err := NewReader(bytes.NewReader(b), 99).Read(); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("length == maxLen+1: %v", err)
	}
}

func TestReaderStreamAndSticky(t *testing.T) {
	var stream []byte
	for _, tc := range messageCases {
		stream = append(stream, tc.wire...)
	}
	stream = append(stream, be32(0xffffffff)...)
	stream = append(stream, messageCases[1].wire...)
	r := NewReader(bytes.NewReader(stream), 0)
	for i, tc := range messageCases {
		m, err := r.Read()
		if err != nil || !equalMessage(m, tc.m) {
			t.Fatalf("message %d (%s): %+v, %v", i, tc.name, m, err)
		}
		if i == 0 && r.Buffered() != len(stream)-len(tc.wire) {
			t.Errorf("Buffered = %d, want %d", r.Buffered(), len(stream)-len(tc.wire))
		}
	}
	_, err1 := r.Read()
	_, err2 := r.Read()
	if !errors.Is(err1, ErrMessageTooLong) || err2 != err1 {
		t.Fatalf("errors %v, %v: want the same sticky ErrMessageTooLong", err1, err2)
	}
}

func TestAppendPieceHeader(t *testing.T) {
	block := []byte("0123456789")
	got := append(AppendPieceHeader(nil, 3, 4, len(block)), block...)
	want := AppendMessage(nil, Message{ID: Piece, Index: 3, Begin: 4, Payload: block})
	if !bytes.Equal(got, want) || len(got)-len(block) != PieceHeaderLen {
		t.Fatalf("% x != % x", got, want)
	}
	ext := AppendExtended(nil, 5, func(b []byte) []byte { return append(b, "d1:xi1ee"...) })
	if want := AppendMessage(nil, Message{ID: Extended, ExtID: 5, Payload: []byte("d1:xi1ee")}); !bytes.Equal(ext, want) {
		t.Fatalf("AppendExtended % x != % x", ext, want)
	}
}

func TestIDString(t *testing.T) {
	for id, want := range map[ID]string{Choke: "choke", Piece: "piece", HaveAll: "have-all", Extended: "extended", 10: "unknown(10)", 200: "unknown(200)"} {
		if got := id.String(); got != want {
			t.Errorf("ID(%d).String() = %q, want %q", id, got, want)
		}
	}
}

// loopSource replays one byte string forever without allocating.
type loopSource struct {
	data []byte
	off  int
}

func (l *loopSource) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func TestReadPieceNoAllocs(t *testing.T) {
	msg := AppendMessage(nil, Message{ID: Piece, Index: 1, Begin: 16384, Payload: bytes.Repeat([]byte{7}, 16384)})
	r := NewReader(&loopSource{data: msg}, 0)
	if _, err := r.Read(); err != nil { // warm up: sizes the buffer
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		m, err := r.Read()
		if err != nil || m.ID != Piece || len(m.Payload) != 16384 {
			t.Fatalf("%+v %v", m.ID, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per piece message, want 0", allocs)
	}
}

func TestReaderUsesGivenBufio(t *testing.T) {
	src := bufio.NewReader(bytes.NewReader(hexb(messageCases[5].wire, messageCases[6].wire)))
	r := NewReader(src, 0)
	if r.br != src {
		t.Fatal("a *bufio.Reader source was wrapped again")
	}
	for _, tc := range messageCases[5:7] {
		if m, err := r.Read(); err != nil || !equalMessage(m, tc.m) {
			t.Fatalf("%s: %+v %v", tc.name, m, err)
		}
	}
}
