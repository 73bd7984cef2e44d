package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// readBufSize is the bufio size used when the source is not already a
// *bufio.Reader: small messages are batched, large blocks bypass it.
const readBufSize = 8 << 10

// Reader reads framed messages from a stream after the handshake.
//
// The length prefix is checked against maxLen, and against the exact length
// of fixed-size messages, before anything is allocated or read. The Payload
// of a returned Message aliases an internal buffer that is reused: it is
// valid only until the next call to Read. The buffer grows to the largest
// payload seen (at most maxLen), so steady-state reads do not allocate.
//
// A Reader is not safe for concurrent use; it is owned by one goroutine
// (the peer's read loop). After an error the Reader keeps returning it.
type Reader struct {
	br     *bufio.Reader // static after construction
	maxLen uint32        // static after construction
	hdr    [12]byte      // scratch for the length prefix and fixed fields
	buf    []byte        // reused payload buffer; len(buf) <= maxLen
	err    error         // sticky error
}

// NewReader returns a Reader over r that refuses messages whose length
// prefix exceeds maxLen (DefaultMaxLen if maxLen <= 0). Ordinary peers need
// MaxBlock+13; callers pass max(MaxBlock+13, bitfieldLen+1) so that a
// torrent's bitfield fits. If r is a *bufio.Reader it is used directly.
func NewReader(r io.Reader, maxLen int) *Reader {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	if maxLen > 1<<31 {
		maxLen = 1 << 31
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, readBufSize)
	}
	return &Reader{br: br, maxLen: uint32(maxLen)}
}

// Buffered returns the number of bytes already read from the source but not
// yet returned as messages.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Read reads the next message. At a clean message boundary the end of the
// stream gives io.EOF; a message cut short gives io.ErrUnexpectedEOF.
// Unknown message ids are returned with their raw payload so the caller can
// ignore them, as BEP 3 asks.
func (r *Reader) Read() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.read()
	if err != nil {
		r.err = err
	}
	return m, err
}

func (r *Reader) read() (Message, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:4]); err != nil {
		if err == io.EOF {
			return Message{}, io.EOF
		}
		return Message{}, fmt.Errorf("wire: reading length prefix: %w", err)
	}
	n := binary.BigEndian.Uint32(r.hdr[:4])
	if n == 0 {
		return Message{Keepalive: true}, nil
	}
	if n > r.maxLen {
		return Message{}, fmt.Errorf("%w: length %d exceeds %d", ErrMessageTooLong, n, r.maxLen)
	}
	b, err := r.br.ReadByte()
	if err != nil {
		return Message{}, fmt.Errorf("wire: reading message id: %w", noEOF(err))
	}
	m := Message{ID: ID(b)}
	if want := fixedLen(m.ID); want != 0 && n != want {
		return m, fmt.Errorf("%w: %s with length %d, want %d", ErrBadLength, m.ID, n, want)
	}
	rest := n - 1
	be := binary.BigEndian
	switch m.ID {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return m, nil
	case Have, Suggest, AllowedFast:
		if err := r.fill(4); err != nil {
			return m, err
		}
		m.Index = be.Uint32(r.hdr[:4])
		return m, nil
	case Request, Cancel, Reject:
		if err := r.fill(12); err != nil {
			return m, err
		}
		m.Index = be.Uint32(r.hdr[0:4])
		m.Begin = be.Uint32(r.hdr[4:8])
		m.Length = be.Uint32(r.hdr[8:12])
		if m.ID == Request && m.Length > MaxBlock {
			return m, fmt.Errorf("%w: request for %d bytes", ErrBlockTooLong, m.Length)
		}
		return m, nil
	case Port:
		if err := r.fill(2); err != nil {
			return m, err
		}
		m.Port = be.Uint16(r.hdr[:2])
		return m, nil
	case Piece:
		if rest < 8 {
			return m, fmt.Errorf("%w: piece with length %d, want at least 9", ErrBadLength, n)
		}
		if rest-8 > MaxBlock {
			return m, fmt.Errorf("%w: piece block of %d bytes", ErrBlockTooLong, rest-8)
		}
		if err := r.fill(8); err != nil {
			return m, err
		}
		m.Index = be.Uint32(r.hdr[0:4])
		m.Begin = be.Uint32(r.hdr[4:8])
		rest -= 8
	case Extended:
		if rest < 1 {
			return m, fmt.Errorf("%w: extended message without ext id", ErrBadLength)
		}
		if m.ExtID, err = r.br.ReadByte(); err != nil {
			return m, fmt.Errorf("wire: reading extended id: %w", noEOF(err))
		}
		rest--
	}
	// bitfield, piece block, extended payload, unknown ids
	if uint32(cap(r.buf)) < rest {
		r.buf = make([]byte, rest)
	}
	m.Payload = r.buf[:rest:rest]
	if _, err := io.ReadFull(r.br, m.Payload); err != nil {
		m.Payload = nil
		return m, fmt.Errorf("wire: reading %s payload: %w", m.ID, noEOF(err))
	}
	return m, nil
}

// fill reads n (<= len(hdr)) fixed bytes into r.hdr.
func (r *Reader) fill(n int) error {
	if _, err := io.ReadFull(r.br, r.hdr[:n]); err != nil {
		return fmt.Errorf("wire: reading message body: %w", noEOF(err))
	}
	return nil
}
