package daemon

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The store keeps the daemon's state in a folder (by default
// DATA/.shoal-daemon):
//
//	settings.json            Settings
//	torrents/<hex>.json      one Record per torrent
//	torrents/<hex>.torrent   the .torrent bytes (absent for a magnet whose metadata has not arrived)
//
// Why files and not SQLite: each record is small and written alone, so one
// file per torrent written with write-temp, fsync, rename, fsync-dir is
// crash-safe (a kill -9 or power loss leaves the old or the new record, never
// a torn one) without a database engine; loading 1,000 of them is a few
// milliseconds; and the .torrent bytes sit beside their record, readable with
// `shoal info`. Nothing needs queries across torrents.

// Size caps for files read back from the store (checked before allocation).
const (
	maxRecordSize   = 1 << 20
	maxSettingsSize = 1 << 20
	maxTorrentFile  = 64 << 20
)

// FilePref is the user's choice for one file of a torrent.
type FilePref struct {
	Wanted   bool `json:"wanted"`
	Priority int  `json:"priority"` // -1 low, 0 normal, 1 high
}

// Record is everything the daemon remembers about one torrent.
type Record struct {
	InfoHash   string     `json:"info_hash"` // lower-case hex, 40 chars
	ID         int        `json:"id"`        // small stable number (Transmission RPC ids)
	Name       string     `json:"name"`
	Magnet     string     `json:"magnet,omitempty"` // set when added by magnet (its trackers and peers)
	Dir        string     `json:"dir"`              // the folder holding the torrent's file or top folder
	Paused     bool       `json:"paused"`
	Added      time.Time  `json:"added"`
	Completed  time.Time  `json:"completed,omitzero"` // when the last piece was verified
	Uploaded   int64      `json:"uploaded"`           // payload bytes over all runs
	Downloaded int64      `json:"downloaded"`         // payload bytes over all runs
	SeedTime   int64      `json:"seed_seconds"`       // seconds spent complete and running
	Have       int64      `json:"have"`               // verified bytes last seen
	Size       int64      `json:"size"`               // total bytes (0 until metadata is known)
	SeedRatio  float64    `json:"seed_ratio"`         // stop seeding at this ratio; 0 = the global setting; <0 = never
	SeedLimit  int64      `json:"seed_limit"`         // stop after this many seconds of seeding; 0 = global; <0 = never
	UpLimit    int64      `json:"up_limit"`           // bytes/s; 0 = unlimited
	DownLimit  int64      `json:"down_limit"`         // bytes/s; 0 = unlimited
	Files      []FilePref `json:"files,omitempty"`
	// WantedSize and WantedLeft are Transmission's sizeWhenDone and
	// leftUntilDone as last seen while running, for the file choices in
	// WantedFor (see prefsKey); a stopped torrent shows them after a restart.
	WantedSize int64    `json:"wanted_size,omitempty"`
	WantedLeft int64    `json:"wanted_left,omitempty"`
	WantedFor  string   `json:"wanted_for,omitempty"`
	Peers      []string `json:"peers,omitempty"` // extra peers to dial, HOST:PORT
	Error      string   `json:"error,omitempty"`
	// FinishedSeeding is set when a ratio or time goal stopped the torrent.
	FinishedSeeding bool `json:"finished_seeding,omitempty"`
}

// Settings are the daemon-wide options that survive a restart.
type Settings struct {
	DownloadDir     string  `json:"download_dir"`      // default folder for new torrents (inside the data folder)
	MaxActive       int     `json:"max_active"`        // torrents downloading at once (queue); 0 = unlimited
	SeedRatio       float64 `json:"seed_ratio"`        // stop seeding at this ratio; 0 = never
	SeedLimit       int64   `json:"seed_limit"`        // stop seeding after this many seconds; 0 = never
	UploadRate      int64   `json:"upload_rate"`       // global bytes/s; 0 = unlimited
	DownloadRate    int64   `json:"download_rate"`     // global bytes/s; 0 = unlimited
	StartAdded      bool    `json:"start_added"`       // start torrents when added (unless the request says paused)
	RemoveWatchFile bool    `json:"remove_watch_file"` // delete a .torrent from the watch folder once added (else renamed to .added)
}

// DefaultSettings are used when the store has none.
func DefaultSettings(dataDir string) Settings {
	return Settings{DownloadDir: dataDir, MaxActive: 5, StartAdded: true}
}

// Store is the on-disk state. Its methods are safe for concurrent use on
// different info-hashes; the Manager serialises writes to one record.
type Store struct {
	dir string // static after construction
}

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "torrents"), 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

func validHex(h string) error {
	if len(h) != 40 || strings.ToLower(h) != h {
		return fmt.Errorf("bad info-hash %q", h)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("bad info-hash %q", h)
	}
	return nil
}

func (s *Store) path(h, ext string) string { return filepath.Join(s.dir, "torrents", h+ext) }

// Put writes a record atomically.
func (s *Store) Put(r *Record) error {
	if err := validHex(r.InfoHash); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.path(r.InfoHash, ".json"), b)
}

// PutTorrent stores the .torrent bytes of a torrent.
func (s *Store) PutTorrent(h string, data []byte) error {
	if err := validHex(h); err != nil {
		return err
	}
	return writeAtomic(s.path(h, ".torrent"), data)
}

// Torrent reads the stored .torrent bytes (fs.ErrNotExist if none).
func (s *Store) Torrent(h string) ([]byte, error) {
	if err := validHex(h); err != nil {
		return nil, err
	}
	return readCapped(s.path(h, ".torrent"), maxTorrentFile)
}

// Delete removes a torrent's record and .torrent file.
func (s *Store) Delete(h string) error {
	if err := validHex(h); err != nil {
		return err
	}
	err1 := os.Remove(s.path(h, ".torrent"))
	if errors.Is(err1, fs.ErrNotExist) {
		err1 = nil
	}
	err2 := os.Remove(s.path(h, ".json"))
	if errors.Is(err2, fs.ErrNotExist) {
		err2 = nil
	}
	return errors.Join(err1, err2)
}

// Load reads every record. A record that cannot be read is skipped and
// reported in the returned error list (the daemon still starts).
func (s *Store) Load() ([]*Record, []error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "torrents"))
	if err != nil {
		return nil, []error{fmt.Errorf("read store: %w", err)}
	}
	var recs []*Record
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			if strings.HasSuffix(name, ".tmp") { // left by a crash mid-write
				os.Remove(filepath.Join(s.dir, "torrents", name))
			}
			continue
		}
		b, err := readCapped(filepath.Join(s.dir, "torrents", name), maxRecordSize)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("record %s: %w", name, err))
			continue
		}
		if err := validHex(r.InfoHash); err != nil || r.InfoHash+".json" != name {
			errs = append(errs, fmt.Errorf("record %s: info-hash does not match its name", name))
			continue
		}
		recs = append(recs, &r)
	}
	return recs, errs
}

// Settings reads the settings (DefaultSettings(dataDir) if there are none).
func (s *Store) Settings(dataDir string) (Settings, error) {
	st := DefaultSettings(dataDir)
	b, err := readCapped(filepath.Join(s.dir, "settings.json"), maxSettingsSize)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return DefaultSettings(dataDir), fmt.Errorf("settings: %w", err)
	}
	return st, nil
}

// PutSettings writes the settings atomically.
func (s *Store) PutSettings(st Settings) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, "settings.json"), b)
}

// readCapped reads a whole file, refusing files larger than max.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit", path, fi.Size(), max)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// writeAtomic writes data to path through a temp file, fsync and rename, and
// syncs the folder, so a crash leaves either the old or the new content.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
