// Package storage is the torrent's byte space on disk or in memory: a small
// interface built from io interfaces, piece verification with every core,
// and resume records so that a restart does not re-hash unchanged content.
//
// # Safety of paths
//
// OpenFiles re-validates every file path of the Info it is given (an Info
// built by hand bypasses metainfo.ParseInfo) and does all file-system access
// through an os.Root, so neither ".." nor a symlink planted inside the output
// folder can make shoal read or write outside it. A consequence: data reached
// through a symlink that points outside the folder is refused; point the
// folder at the real location instead.
//
// # Crash safety and resume
//
// The engine's contract is: write a piece's blocks, hash the piece, then
// mark it complete; a piece once verified is never written again. Every so
// often, and on exit, the engine takes a snapshot of its have-set, calls
// Sync, and then SaveResume with that snapshot (on a clean exit,
// SaveResumeFinal). The order matters: a piece in the record must be on
// disk before the record is. SaveResume records the completed-pieces bitfield plus
// each content file's size and mtime, atomically (temp file, fsync, rename,
// fsync of the directory).
//
// On restart LoadResumeState compares each file with the record:
//
//   - unchanged file: its pieces in the record's have-set are trusted, and
//     its other pieces are known incomplete (nothing wrote them): no hashing.
//   - size changed or file missing: every piece touching the file is
//     dropped from have and must be checked.
//   - only mtime changed, record from a periodic save (a crash or kill -9
//     after that save): the change is explained by our own writes to pieces
//     that were not complete, because verified pieces are never rewritten.
//     Have-pieces stay trusted; the file's other pieces must be checked (some
//     may have completed after the save).
//   - only mtime changed, record from a final save: something else changed
//     the file while shoal was not running: every piece touching it is
//     dropped from have and checked.
//
// So after kill -9 only pieces written since the last save are hashed, not
// the whole content. The residual risk, accepted and documented: another
// program rewriting completed regions of a file while shoal is running and
// then shoal crashing goes unnoticed until a peer reports a hash failure.
package storage

import (
	"io"
)

// Storage is the byte space of one torrent (offset 0 is the first byte of
// the first file). Implementations are safe for concurrent use.
//
// ReadAt of regions never written, of padding files and of missing files
// returns zeros, not an error. WriteAt skips padding regions (they are
// never stored).
type Storage interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes data written so far durable.
	Sync() error
	Close() error
}
