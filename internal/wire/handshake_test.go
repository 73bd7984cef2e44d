package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func testHandshake() Handshake {
	var h Handshake
	for i := range h.InfoHash {
		h.InfoHash[i] = byte(i + 1)
		h.PeerID[i] = byte(0xa0 + i)
	}
	return h
}

func TestHandshakeRoundTrip(t *testing.T) {
	h := testHandshake()
	h.SetExtended()
	h.SetFast()
	h.SetDHT()
	b := h.Append(nil)
	if len(b) != HandshakeLen || HandshakeLen != 68 {
		t.Fatalf("len %d, HandshakeLen %d", len(b), HandshakeLen)
	}
	if b[0] != 19 || string(b[1:20]) != Protocol {
		t.Fatalf("bad prefix %q", b[:20])
	}
	want := [8]byte{0, 0, 0, 0, 0, 0x10, 0, 0x05}
	if [8]byte(b[20:28]) != want {
		t.Fatalf("reserved % x, want % x", b[20:28], want)
	}
	got, err := ReadHandshake(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != h || !got.Extended() || !got.Fast() || !got.DHT() {
		t.Fatalf("got %+v, want %+v", got, h)
	}
	var plain Handshake
	if plain.Extended() || plain.Fast() || plain.DHT() {
		t.Fatal("zero handshake reports extension bits")
	}
}

func TestHandshakeHeadThenPeerID(t *testing.T) {
	h := testHandshake()
	h.SetExtended()
	r := bytes.NewReader(h.Append(nil))
	res, ih, err := ReadHandshakeHead(r)
	if err != nil {
		t.Fatal(err)
	}
	if res != h.Reserved || ih != h.InfoHash {
		t.Fatalf("head mismatch")
	}
	if r.Len() != 20 {
		t.Fatalf("head consumed %d bytes, want 48", HandshakeLen-r.Len())
	}
	id, err := ReadPeerID(r)
	if err != nil || id != h.PeerID {
		t.Fatalf("peer id %x, %v", id, err)
	}
}

func TestHandshakeBad(t *testing.T) {
	good := testHandshake().Append(nil)
	badLen := append([]byte(nil), good...)
	badLen[0] = 18
	badStr := append([]byte(nil), good...)
	badStr[5] = 'X'
	for name, b := range map[string][]byte{"pstrlen": badLen, "pstr": badStr} {
		if _, err := ReadHandshake(bytes.NewReader(b)); !errors.Is(err, ErrBadHandshake) {
			t.Errorf("%s: err %v, want ErrBadHandshake", name, err)
		}
	}
	// a wrong pstrlen is refused after reading one byte
	r := bytes.NewReader(badLen)
	if _, _, err := ReadHandshakeHead(r); !errors.Is(err, ErrBadHandshake) || r.Len() != HandshakeLen-1 {
		t.Errorf("pstrlen check read %d bytes, err %v", HandshakeLen-r.Len(), err)
	}
	for n := 0; n < HandshakeLen; n++ {
		_, err := ReadHandshake(bytes.NewReader(good[:n]))
		want := io.ErrUnexpectedEOF
		if n == 0 {
			want = io.EOF
		}
		if !errors.Is(err, want) {
			t.Errorf("truncated to %d: err %v, want %v", n, err, want)
		}
	}
}
