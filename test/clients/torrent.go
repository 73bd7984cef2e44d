package clients

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TorrentOpts are the options of MakeTorrent.
type TorrentOpts struct {
	Trackers    []string // announce URLs (at least one; mktorrent requires it)
	PieceLength int64    // bytes, a power of two from 32 KiB to 256 MiB; 0 = 256 KiB
	Private     bool
	Comment     string
	WebSeeds    []string
}

// MakeTorrent writes a v1 .torrent of path to out with mktorrent (no
// creation date, so the output is deterministic). It is independent of
// shoal's own code on purpose.
func MakeTorrent(t testing.TB, path, out string, o TorrentOpts) {
	t.Helper()
	Require(t, Mktorrent)
	if len(o.Trackers) == 0 {
		t.Fatal("MakeTorrent: at least one tracker is needed")
	}
	pl := o.PieceLength
	if pl == 0 {
		pl = 256 << 10
	}
	if pl&(pl-1) != 0 || pl < 32<<10 || pl > 256<<20 {
		t.Fatalf("MakeTorrent: piece length %d is not a power of two in [32 KiB, 256 MiB]", pl)
	}
	args := []string{"mktorrent", "-d", "-l", strconv.Itoa(bits.TrailingZeros64(uint64(pl))), "-o", out}
	for _, tr := range o.Trackers {
		args = append(args, "-a", tr)
	}
	for _, w := range o.WebSeeds {
		args = append(args, "-w", w)
	}
	if o.Private {
		args = append(args, "-p")
	}
	if o.Comment != "" {
		args = append(args, "-c", o.Comment)
	}
	_ = os.Remove(out)
	if _, _, err := runCmd(2*time.Minute, append(args, path)...); err != nil {
		t.Fatalf("mktorrent: %v", err)
	}
}

// Torrent is what ReadTorrent extracts from a .torrent file.
type Torrent struct {
	InfoHash    string // v1 info-hash, lower-case hex (sha1 of the raw info dict)
	Name        string
	PieceLength int64
	NumPieces   int
	TotalSize   int64
	NumFiles    int // 1 for a single-file torrent
	Private     bool
	Announce    string
}

// ReadTorrent parses a v1 .torrent with this package's own small bencode
// reader, so tests can check shoal's metainfo code against it.
func ReadTorrent(path string) (Torrent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Torrent{}, fmt.Errorf("read torrent: %w", err)
	}
	if len(data) > 64<<20 {
		return Torrent{}, errors.New("read torrent: file larger than 64 MiB")
	}
	d := &bdec{buf: data}
	v, err := d.value(0)
	if err != nil {
		return Torrent{}, fmt.Errorf("torrent %s: %w", path, err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return Torrent{}, fmt.Errorf("torrent %s: top level is not a dict", path)
	}
	info, ok := top["info"].(map[string]any)
	if !ok || d.infoEnd == 0 {
		return Torrent{}, fmt.Errorf("torrent %s: no info dict", path)
	}
	sum := sha1.Sum(data[d.infoStart:d.infoEnd])
	tr := Torrent{InfoHash: hex.EncodeToString(sum[:])}
	tr.Name, _ = info["name"].(string)
	tr.PieceLength, _ = info["piece length"].(int64)
	pieces, _ := info["pieces"].(string)
	tr.NumPieces = len(pieces) / 20
	p, _ := info["private"].(int64)
	tr.Private = p == 1
	tr.Announce, _ = top["announce"].(string)
	if n, ok := info["length"].(int64); ok {
		tr.TotalSize, tr.NumFiles = n, 1
	} else if files, ok := info["files"].([]any); ok {
		for _, f := range files {
			fd, _ := f.(map[string]any)
			n, _ := fd["length"].(int64)
			tr.TotalSize += n
			tr.NumFiles++
		}
	}
	return tr, nil
}

// bdec is a minimal bencode decoder: strings become Go strings, integers
// int64, lists []any, dicts map[string]any. It records the byte span of the
// top-level "info" value.
type bdec struct {
	buf                []byte
	pos                int
	infoStart, infoEnd int
}

const maxDepth = 64

func (d *bdec) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("bencode: nested too deep")
	}
	if d.pos >= len(d.buf) {
		return nil, errors.New("bencode: unexpected end")
	}
	switch c := d.buf[d.pos]; {
	case c == 'i':
		end := d.index('e')
		if end < 0 {
			return nil, errors.New("bencode: unterminated integer")
		}
		n, err := strconv.ParseInt(string(d.buf[d.pos+1:end]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bencode: integer: %w", err)
		}
		d.pos = end + 1
		return n, nil
	case c == 'l':
		d.pos++
		var out []any
		for d.pos < len(d.buf) && d.buf[d.pos] != 'e' {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		d.pos++
		return out, nil
	case c == 'd':
		d.pos++
		out := map[string]any{}
		for d.pos < len(d.buf) && d.buf[d.pos] != 'e' {
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			start := d.pos
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if depth == 0 && k == "info" {
				d.infoStart, d.infoEnd = start, d.pos
			}
			out[k] = v
		}
		d.pos++
		return out, nil
	case c >= '0' && c <= '9':
		return d.str()
	default:
		return nil, fmt.Errorf("bencode: unexpected byte %q at %d", c, d.pos)
	}
}

func (d *bdec) str() (string, error) {
	colon := d.index(':')
	if colon < 0 {
		return "", errors.New("bencode: bad string")
	}
	n, err := strconv.Atoi(string(d.buf[d.pos:colon]))
	if err != nil || n < 0 || n > len(d.buf)-colon-1 {
		return "", errors.New("bencode: bad string length")
	}
	s := string(d.buf[colon+1 : colon+1+n])
	d.pos = colon + 1 + n
	return s, nil
}

func (d *bdec) index(c byte) int {
	for i := d.pos; i < len(d.buf) && i < d.pos+32; i++ {
		if d.buf[i] == c {
			return i
		}
	}
	return -1
}

// OtherInfo is what another client reports about a .torrent.
type OtherInfo struct {
	InfoHash  string `json:"info_hash"` // v1, lower-case hex
	Name      string `json:"name"`
	TotalSize int64  `json:"total_size"`
	NumFiles  int    `json:"num_files"`
	NumPieces int    `json:"num_pieces"`
	Private   bool   `json:"private"`
}

// LibtorrentInfo loads a .torrent with libtorrent's lt.torrent_info and
// returns what libtorrent reports; an error means libtorrent rejected it.
func LibtorrentInfo(t testing.TB, torrent string) (OtherInfo, error) {
	t.Helper()
	Require(t, Libtorrent)
	dir := pyDir(t)
	out, _, err := runCmd(time.Minute, Python, filepath.Join(dir, "ltinfo.py"), torrent)
	if err != nil {
		return OtherInfo{}, fmt.Errorf("libtorrent rejected %s: %w", torrent, err)
	}
	var oi OtherInfo
	if err := json.Unmarshal([]byte(out), &oi); err != nil {
		return OtherInfo{}, fmt.Errorf("ltinfo.py output %q: %w", out, err)
	}
	return oi, nil
}

var (
	showHash  = regexp.MustCompile(`(?m)^\s*Hash:\s*([0-9a-fA-F]{40})\s*$`)
	showName  = regexp.MustCompile(`(?m)^\s*Name:\s*(.*?)\s*$`)
	showPriv  = regexp.MustCompile(`(?m)^\s*Privacy:\s*(.*?)\s*$`)
	showFiles = regexp.MustCompile(`(?m)^FILES\s*$`)
)

// TransmissionShowInfo runs transmission-show on a .torrent and returns the
// info-hash, name and private flag it reports; an error means it was rejected.
func TransmissionShowInfo(t testing.TB, torrent string) (OtherInfo, error) {
	t.Helper()
	Require(t, TransmissionShow)
	out, _, err := runCmd(time.Minute, "transmission-show", torrent)
	if err != nil {
		return OtherInfo{}, fmt.Errorf("transmission-show rejected %s: %w", torrent, err)
	}
	m := showHash.FindStringSubmatch(out)
	if m == nil || !showFiles.MatchString(out) {
		return OtherInfo{}, fmt.Errorf("transmission-show: no hash or file list in output:\n%s", out)
	}
	oi := OtherInfo{InfoHash: strings.ToLower(m[1])}
	if n := showName.FindStringSubmatch(out); n != nil {
		oi.Name = n[1]
	}
	if p := showPriv.FindStringSubmatch(out); p != nil {
		oi.Private = strings.Contains(strings.ToLower(p[1]), "private")
	}
	return oi, nil
}
