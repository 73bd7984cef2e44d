// Package wire is shoal's codec for the BitTorrent peer wire protocol.
//
// It covers the handshake and framed messages of BEP 3, the fast extension
// (BEP 6: have-all, have-none, suggest, reject, allowed-fast and the allowed
// fast set), the extension protocol (BEP 10) with its ut_metadata (BEP 9),
// ut_pex (BEP 11) and ut_holepunch (BEP 55) messages, and compact peer
// encoding (BEP 23, BEP 7).
//
// The package works on io.Reader, io.Writer and byte slices only: it never
// dials, keeps no torrent state and starts no goroutines. Every length read
// from the wire is checked against a cap before anything is allocated.
//
// Protocol flow of one connection:
//
//	initiator                                   receiver
//	  handshake (68 bytes) ----------------------->
//	  <------------------------------ handshake (68 bytes)
//	  [if both set the extension bit]
//	  extended id=20, ext id 0 (ExtHandshake) ---->
//	  <---- extended id=20, ext id 0 (ExtHandshake)
//	  bitfield | have-all | have-none (first, optional) <-->
//	  interested / unchoke / request / piece / have / cancel ... <-->
//	  extended id=20, ext id = peer's m["ut_metadata"] / m["ut_pex"] <-->
//
// A relay that must route on the info-hash reads the first 48 bytes with
// ReadHandshakeHead and the peer id later with ReadPeerID.
//
// All integers on the wire are big-endian.
package wire
