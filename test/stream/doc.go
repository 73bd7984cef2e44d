// Package stream holds the end-to-end proofs of `shoal stream` and of web
// seeds, run against real processes on 127.0.0.1:
//
//   - TestRangesWhileDownloading: Range requests against the stream URL,
//     including ranges that start in pieces not yet downloaded (checked on
//     the leecher's sparse file), return the source file's bytes.
//   - TestChromiumPlaysWhileDownloading: Debian's headless Chromium plays an
//     ffmpeg-made WebM from the stream URL while a rate-limited seeder is
//     still uploading it; playback time advances, and after a seek to the
//     middle it advances from there.
//   - TestWebseedOnly and TestWebseedAndSeeder: a torrent whose only source
//     is a web seed (Go's http.FileServer) downloads completely; with a web
//     seed plus a rate-limited seeder, both deliver bytes.
//
// Every test skips when a program it needs (chromium, ffmpeg) is missing,
// or fails when SHOAL_REQUIRE_INTEROP=1 (CI). The shoal binary is built
// once per test binary (clients.ShoalBinary); $SHOAL_BIN overrides it.
//
// fileserver/ is a tiny loopback web seed (http.FileServer, optional rate
// limit) used by scripts/bench-stream.sh.
package stream
