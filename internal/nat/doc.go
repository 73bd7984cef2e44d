// Package nat helps shoal peers behind NATs: it maps a port on the home
// router (NAT-PMP, RFC 6886, and UPnP-IGD, only when the user allows it) and
// upgrades a relayed connection between two NATed shoal peers to a direct
// one by TCP simultaneous open ("hole punching"), coordinated by a small
// rendezvous protocol that a relay runs beside its own (see rendezvous.go).
// It knows no torrent logic (BEP 55 ut_holepunch messages are encoded by
// package wire).
//
// Every exchange with a router is bounded in time and goes only to the
// gateway the caller names (NAT-PMP) or to the SSDP multicast group on the
// local link (UPnP); neither happens unless the caller asks for it.
package nat
