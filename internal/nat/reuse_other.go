//go:build !linux

package nat

import "syscall"

// reuseControl: hole punching needs SO_REUSEPORT; elsewhere the second
// bind to the port fails and the caller falls back to the relay.
func reuseControl(network, address string, c syscall.RawConn) error { return nil }
