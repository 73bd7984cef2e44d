// Package metainfo reads and writes .torrent files (BitTorrent v1, BEP 3)
// and magnet links (BEP 9): the info-hash, the piece↔file byte geometry,
// and file-path sanitising.
//
// Security: every file name taken from a torrent is validated by
// ValidateComponent before it can reach a caller; torrents with unsafe
// names are refused (not repaired), so joined paths stay inside the output
// folder. Every length is capped before allocation (MaxInfoSize,
// MaxTotalLength, MaxFiles, MaxPieceLength, MaxTorrentSize).
package metainfo

import (
	"crypto/sha1"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/shoal-p2p/shoal/internal/bencode"
)

// MaxTorrentSize is the largest .torrent file Load reads.
const MaxTorrentSize = 64 << 20

// MetaInfo is a parsed .torrent file. Static after Parse.
type MetaInfo struct {
	Announce     string
	AnnounceList [][]string
	Comment      string
	CreatedBy    string
	CreationDate int64    // Unix seconds; 0 if absent
	URLList      []string // BEP 19 web seeds
	Info         *Info
	InfoHash     Hash
}

// rawMeta keeps optional fields raw so that a wrongly typed optional field
// (seen in the wild) is ignored instead of failing the whole torrent.
type rawMeta struct {
	Announce     bencode.RawMessage `bencode:"announce"`
	AnnounceList bencode.RawMessage `bencode:"announce-list"`
	Comment      bencode.RawMessage `bencode:"comment"`
	CreatedBy    bencode.RawMessage `bencode:"created by"`
	CreationDate bencode.RawMessage `bencode:"creation date"`
	URLList      bencode.RawMessage `bencode:"url-list"`
	Info         bencode.RawMessage `bencode:"info"`
}

// decodeOpt decodes an optional field, leaving v unchanged on error.
func decodeOpt(raw bencode.RawMessage, v any) {
	if raw != nil {
		_ = bencode.UnmarshalLimits(raw, v, parseLimits)
	}
}

// Parse decodes a whole .torrent file. The info-hash is the SHA-1 of the
// info dictionary's raw bytes. The caller caps len(data) (Load does).
func Parse(data []byte) (*MetaInfo, error) {
	if len(data) > MaxTorrentSize {
		return nil, invalid("torrent of %d bytes exceeds %d", len(data), MaxTorrentSize)
	}
	var rm rawMeta
	if err := bencode.UnmarshalLimits(data, &rm, parseLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if rm.Info == nil {
		return nil, invalid("no info dictionary")
	}
	info, err := ParseInfo(rm.Info)
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{Info: info, InfoHash: sha1.Sum(info.Raw)}
	decodeOpt(rm.Announce, &m.Announce)
	decodeOpt(rm.Comment, &m.Comment)
	decodeOpt(rm.CreatedBy, &m.CreatedBy)
	decodeOpt(rm.CreationDate, &m.CreationDate)
	var al [][]string
	decodeOpt(rm.AnnounceList, &al)
	m.AnnounceList = al
	if rm.URLList != nil {
		var one string
		if bencode.UnmarshalLimits(rm.URLList, &one, parseLimits) == nil {
			if one != "" {
				m.URLList = []string{one}
			}
		} else {
			var list []string
			decodeOpt(rm.URLList, &list)
			for _, u := range list {
				if u != "" {
					m.URLList = append(m.URLList, u)
				}
			}
		}
	}
	return m, nil
}

// Load reads and parses a .torrent file, refusing files larger than
// MaxTorrentSize before reading them.
func Load(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTorrentSize+1))
	if err != nil {
		return nil, fmt.Errorf("metainfo: read %s: %w", path, err)
	}
	if len(data) > MaxTorrentSize {
		return nil, fmt.Errorf("metainfo: %s is larger than %d bytes", path, MaxTorrentSize)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Trackers returns the announce tiers (BEP 12): announce-list when it has
// any URL, else [[announce]], else nil. Empty URLs and tiers are dropped.
func (m *MetaInfo) Trackers() [][]string {
	var tiers [][]string
	for _, tier := range m.AnnounceList {
		var t []string
		for _, u := range tier {
			if u != "" {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			tiers = append(tiers, t)
		}
	}
	if len(tiers) == 0 && m.Announce != "" {
		tiers = [][]string{{m.Announce}}
	}
	return tiers
}

// Magnet returns a magnet link for the torrent: info-hash, name, every
// tracker (tier order) and web seed.
func (m *MetaInfo) Magnet() string {
	mg := Magnet{InfoHash: m.InfoHash, WebSeeds: m.URLList}
	if m.Info != nil {
		mg.Name = m.Info.Name
	}
	for _, tier := range m.Trackers() {
		mg.Trackers = append(mg.Trackers, tier...)
	}
	return mg.String()
}

// Magnet is a parsed magnet link (BEP 9).
type Magnet struct {
	InfoHash Hash
	Name     string   // dn
	Trackers []string // tr
	Peers    []string // x.pe, "host:port"
	WebSeeds []string // ws
}

// MaxMagnetLen caps the length of a magnet URI accepted by ParseMagnet.
const MaxMagnetLen = 64 << 10

// ParseMagnet parses a magnet URI with a BitTorrent v1 info-hash
// (xt=urn:btih:, hex or base32). Parameters are taken from the query:
// dn, tr (and tr.N), x.pe, ws. A magnet carrying only a v2 hash
// (urn:btmh:) is refused.
func ParseMagnet(uri string) (*Magnet, error) {
	if len(uri) > MaxMagnetLen {
		return nil, fmt.Errorf("metainfo: magnet link of %d bytes exceeds %d", len(uri), MaxMagnetLen)
	}
	rest, ok := strings.CutPrefix(uri, "magnet:?")
	if !ok {
		if len(uri) >= 7 && strings.EqualFold(uri[:7], "magnet:") {
			rest, ok = strings.CutPrefix(uri[7:], "?")
		}
		if !ok {
			return nil, fmt.Errorf("metainfo: %q is not a magnet link (want magnet:?xt=urn:btih:...)", truncate(uri))
		}
	}
	q, err := url.ParseQuery(rest)
	if err != nil {
		return nil, fmt.Errorf("metainfo: magnet link: %w", err)
	}
	m := &Magnet{}
	found, v2 := false, false
	for _, xt := range q["xt"] {
		if len(xt) >= 9 && strings.EqualFold(xt[:9], "urn:btih:") {
			h, err := ParseHash(xt[9:])
			if err != nil {
				return nil, fmt.Errorf("metainfo: magnet link: %w", err)
			}
			m.InfoHash, found = h, true
			break
		}
		if len(xt) >= 9 && strings.EqualFold(xt[:9], "urn:btmh:") {
			v2 = true
		}
	}
	if !found {
		if v2 {
			return nil, fmt.Errorf("metainfo: magnet link has only a v2 (btmh) hash; v2 torrents are not supported")
		}
		return nil, fmt.Errorf("metainfo: magnet link has no xt=urn:btih: info-hash")
	}
	m.Name = q.Get("dn")
	m.Trackers = appendNonEmpty(nil, q["tr"])
	var numbered []string // tr.1, tr.2, ...: deterministic order
	for k := range q {
		if strings.HasPrefix(k, "tr.") {
			numbered = append(numbered, k)
		}
	}
	slices.Sort(numbered)
	for _, k := range numbered {
		m.Trackers = appendNonEmpty(m.Trackers, q[k])
	}
	m.Peers = appendNonEmpty(nil, q["x.pe"])
	m.WebSeeds = appendNonEmpty(nil, q["ws"])
	return m, nil
}

func appendNonEmpty(dst, vs []string) []string {
	for _, v := range vs {
		if v != "" {
			dst = append(dst, v)
		}
	}
	return dst
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// String encodes the magnet link: xt, dn, tr..., ws..., x.pe... .
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(m.InfoHash.String())
	add := func(k, v string) {
		b.WriteByte('&')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	if m.Name != "" {
		add("dn", m.Name)
	}
	for _, t := range m.Trackers {
		add("tr", t)
	}
	for _, w := range m.WebSeeds {
		add("ws", w)
	}
	for _, p := range m.Peers {
		add("x.pe", p)
	}
	return b.String()
}
