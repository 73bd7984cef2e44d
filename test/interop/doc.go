// Package interop holds shoal's interoperability tests: shoal against real
// BitTorrent clients (transmission-daemon, aria2c, python3-libtorrent) and
// opentracker, all on 127.0.0.1, every transfer compared byte for byte.
// The helpers live in test/clients. A missing client skips a test, or
// fails it when SHOAL_REQUIRE_INTEROP=1 (CI); scripts/test.sh runs the
// suite inside a network namespace that holds only lo when run as root.
//
//	go test -count=1 -v ./test/interop/
package interop
