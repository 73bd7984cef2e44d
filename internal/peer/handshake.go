package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/shoal-p2p/shoal/internal/wire"
)

// HandshakeTimeout bounds the whole handshake exchange, so a peer that drips
// its handshake a byte at a time cannot hold a connection slot for long.
const HandshakeTimeout = 20 * time.Second

// ErrInfoHashMismatch is returned when the remote side answers for another torrent.
var ErrInfoHashMismatch = errors.New("peer: info-hash mismatch")

// ErrSelf is returned when we connected to ourselves.
var ErrSelf = errors.New("peer: connected to self")

// Dial connects to addr and exchanges handshakes for ours.InfoHash.
func Dial(ctx context.Context, network, addr string, ours wire.Handshake) (net.Conn, wire.Handshake, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, wire.Handshake{}, err
	}
	theirs, err := Initiate(nc, ours)
	if err != nil {
		nc.Close()
		return nil, wire.Handshake{}, err
	}
	return nc, theirs, nil
}

// Initiate runs the outgoing side of the handshake on an established connection.
func Initiate(nc net.Conn, ours wire.Handshake) (wire.Handshake, error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(ours.Append(nil)); err != nil {
		return wire.Handshake{}, fmt.Errorf("send handshake: %w", err)
	}
	theirs, err := wire.ReadHandshake(nc)
	if err != nil {
		return wire.Handshake{}, fmt.Errorf("read handshake: %w", err)
	}
	if theirs.InfoHash != ours.InfoHash {
		return wire.Handshake{}, ErrInfoHashMismatch
	}
	if theirs.PeerID == ours.PeerID {
		return wire.Handshake{}, ErrSelf
	}
	return theirs, nil
}

// AcceptHead reads the first part of an incoming handshake (up to the
// info-hash) so the listener can route the connection to its torrent.
func AcceptHead(nc net.Conn) (reserved [8]byte, infoHash [20]byte, err error) {
	nc.SetDeadline(time.Now().Add(HandshakeTimeout))
	return wire.ReadHandshakeHead(nc)
}

// AcceptFinish answers an incoming handshake whose head was read by
// AcceptHead and reads the peer id.
func AcceptFinish(nc net.Conn, reserved [8]byte, ours wire.Handshake) (wire.Handshake, error) {
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(ours.Append(nil)); err != nil {
		return wire.Handshake{}, fmt.Errorf("send handshake: %w", err)
	}
	id, err := wire.ReadPeerID(nc)
	if err != nil {
		return wire.Handshake{}, fmt.Errorf("read peer id: %w", err)
	}
	if id == ours.PeerID {
		return wire.Handshake{}, ErrSelf
	}
	return wire.Handshake{Reserved: reserved, InfoHash: ours.InfoHash, PeerID: id}, nil
}
