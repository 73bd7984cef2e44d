package wire

import (
	"bytes"
	"testing"
)

// BenchmarkReadPiece reads 16 KiB piece messages in steady state; it should
// report 0 allocs/op.
func BenchmarkReadPiece(b *testing.B) {
	msg := AppendMessage(nil, Message{ID: Piece, Index: 1, Begin: 16384, Payload: bytes.Repeat([]byte{7}, 16384)})
	r := NewReader(&loopSource{data: msg}, 0)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadHave reads small messages, which come from the bufio buffer.
func BenchmarkReadHave(b *testing.B) {
	msg := AppendMessage(nil, Message{ID: Have, Index: 5})
	r := NewReader(&loopSource{data: bytes.Repeat(msg, 100)}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendMessage encodes a request into a reused buffer.
func BenchmarkAppendMessage(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], Message{ID: Request, Index: 1, Begin: 2, Length: 16384})
	}
}
