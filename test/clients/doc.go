// Package clients runs real BitTorrent programs on 127.0.0.1 for shoal's
// interop tests: opentracker, transmission-daemon, aria2c, python3-libtorrent
// and shoal itself. Every process binds 127.0.0.1 only, with DHT, LSD, PEX,
// UPnP and NAT-PMP switched off (the settings are those of the shared interop
// harness, "Keeping every client on loopback"). It needs nothing outside this
// repository at run time except the Debian packages listed in .ci/run.
//
// # Rules every helper follows
//
//   - Processes are started in their own process group (Setpgid) and ended in
//     t.Cleanup by PID: SIGTERM to the group, SIGKILL after a grace period.
//     Nothing is ever killed by name.
//   - Logs go to files below t.TempDir(); when the test fails, the tail of
//     every log is printed (t.Log) in the cleanup.
//   - Every wait is bounded by a timeout given by the caller.
//   - Ports come from [FreePort]: TCP and UDP free on 127.0.0.1, below 32768
//     (the ephemeral range starts there).
//   - A test that needs a missing program calls [Require], which skips the
//     test, or fails it when the environment has SHOAL_REQUIRE_INTEROP=1 (CI).
//
// # API
//
// Availability and ports:
//
//	Have(name string) bool              // Opentracker, TransmissionDaemon (+transmission-remote),
//	                                    // TransmissionShow, Aria2, Libtorrent, Mktorrent, Redis
//	Require(t, names ...string)         // skip, or fail when SHOAL_REQUIRE_INTEROP=1
//	FreePort(t) int                     // TCP+UDP free on 127.0.0.1, in [20000, 32000), unique per binary
//	WaitListening(addr string, timeout) error
//
// Test data and comparison (deterministic: the same bytes on every run):
//
//	WriteFile(t, path string, size int64)
//	MakeSingle(t, dir, name string, size int64) string // returns dir/name
//	MakeMulti(t, dir, name string) string              // MultiLayout below dir/name; returns it
//	MultiLayout []FileSpec                             // 3 levels, spaces, 2 empty files, odd sizes (~11 MiB)
//	CompareTrees(want, got string, opts ...CompareOption) error // byte for byte, extra files too
//	RequireSameTree(t, want, got string, opts ...CompareOption)
//	AllowMissingEmpty                                  // option: transmission skips empty files
//	DiskUsage(path string) int64                       // allocated bytes (progress of sparse downloads)
//
// Torrents (made and read independently of shoal's own code):
//
//	MakeTorrent(t, path, out string, TorrentOpts{Trackers, PieceLength, Private, Comment, WebSeeds})
//	MakeTorrentLibtorrent(t, path, out, tracker string, pieceLength int64)
//	ReadTorrent(path) (Torrent, error)   // InfoHash (v1 hex), Name, PieceLength, NumPieces,
//	                                     // TotalSize, NumFiles, Private, Announce
//	LibtorrentInfo(t, torrent) (OtherInfo, error)        // lt.torrent_info's view
//	TransmissionShowInfo(t, torrent) (OtherInfo, error)  // transmission-show's view
//
// Trackers: opentracker, and helpers that work with any HTTP tracker that
// answers BEP 48 scrape (e.g. shoal's own):
//
//	StartOpentracker(t, infoHashes ...string) *Tracker  // Tracker{Port, AnnounceURL, Proc}
//	(*Tracker).Allow(t, infoHashes ...string)           // whitelist + SIGHUP reload
//	Scrape(announceURL, infoHashHex string) (ScrapeResult, error) // {Complete, Incomplete, Downloaded}
//	WaitSeeders(t, announceURL, infoHashHex string, n int, timeout)  // t.Fatal on timeout
//	WaitLeechers(t, announceURL, infoHashHex string, n int, timeout)
//
// Peers. Every Start* returns a *Peer{Kind, Port, Addr netip.AddrPort, Dir,
// *Proc}. dataParent is the directory that CONTAINS the torrent's top-level
// name; a leecher's result appears as out/<name>. Seeders of libtorrent and
// transmission return once their data is verified; wait for any seeder at
// the tracker with WaitSeeders.
//
//	StartTransmissionSeeder(t, torrent, dataParent) *Peer
//	StartTransmissionLeecher(t, torrent, out) *Peer  // start + WaitLeechers BEFORE the seeder
//	StartAria2Seeder(t, torrent, dataParent) *Peer
//	StartAria2Leecher(t, torrent, out) *Peer
//	StartLibtorrentSeeder(t, torrent, dataParent, extra ...string) *Peer // e.g. "--upload-limit", "4194304"
//	StartLibtorrentLeecher(t, torrent, out, extra ...string) *Peer       // e.g. "--peer", "127.0.0.1:P"
//	ShoalBinary(t) string                     // go build ./cmd/shoal once per test binary ($SHOAL_BIN overrides)
//	StartShoalSeeder(t, torrent, dataParent, extra ...string) *Peer // shoal seed --listen 127.0.0.1:P -d DIR --no-dht
//	StartShoalLeecher(t, torrent, out, extra ...string) *Peer       // shoal get -o OUT --listen 127.0.0.1:P --no-dht
//	RunShoal(t, timeout, args ...string) (stdout, stderr string, err error)
//	(*Peer).WaitDone(timeout) error           // exited 0 (shoal, aria2, lt) or 100% (transmission)
//	(*Peer).WaitDoneOrStall(out, timeout, stall) error // also fails when out stops growing
//	(*Peer).Stop() / Kill() / Exited() / Wait(timeout) / Log() / PID()  // via *Proc
//	ParseSummary(log) (Summary, bool)         // shoal get's "done: ... uploaded N bytes, peers n"
//	StartProc(t, name, dir string, env []string, argv ...string) *Proc // any other program
//
// A test binary that uses ShoalBinary deletes the build in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(clients.Main(m)) }
//
// # Gotchas (from the shared interop harness)
//
// Transmission 3.00 never dials 127.0.0.1 peers (it only accepts them), so a
// transmission leecher must announce before the seeder, and it does not
// create zero-length files (use AllowMissingEmpty). It keeps a new peer
// choked until its 10 s rechoke. opentracker (Debian) serves only
// whitelisted info-hashes, chroots to its directory and runs as nobody; it
// also returns a peer to itself. libtorrent exempts loopback peers from rate
// limits unless told otherwise (seed.py/get.py do so when given a limit).
package clients
