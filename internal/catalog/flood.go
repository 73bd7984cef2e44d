package catalog

// Flood search (Gnutella style) over the BEP 10 extension "shoal_search".
//
// A peer that speaks it lists "shoal_search" in the "m" dictionary of its
// extension handshake; other clients ignore the unknown name, as BEP 10
// intends, and are never sent these messages. Each message is one bencoded
// dictionary, the payload of an extended message (id 20) with the receiver's
// extension id:
//
//	query: d 2:id 8:<query id> 1:q <text> 3:ttl i<hops left> e
//	reply: d 2:id 8:<query id> 1:r l <hit>... e e
//	hit:   d 1:f i<files> 2:ih 20:<info-hash> 1:n <name> 1:s i<bytes> e
//
// Flow:
//
//	origin ──query(ttl=3)──► A ──query(ttl=2)──► B ──query(ttl=1)──► C   (C does not forward)
//	origin ◄──reply──────── A ◄──reply───────── B ◄──reply──────────  C
//
// Every node remembers the query id and the peer it came from (a bounded
// cache) and handles each id once: a second copy is dropped. It answers from
// its own torrents (every query word a substring of the name or a file path,
// see Normalize) straight back to that peer, and forwards the query with
// ttl-1 to every other shoal peer while ttl-1 > 0. A reply is passed to the
// peer the query came from, so results flow back along the reverse path to
// the origin. A node may refuse to answer, to forward, or both (privacy); it
// still drops duplicates. ttl above MaxFloodTTL is lowered to it.

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shoal-p2p/shoal/internal/bencode"
	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Flood protocol constants.
const (
	FloodExtName    = "shoal_search" // BEP 10 extension name in the handshake's "m"
	FloodIDLen      = 8              // bytes of a query id
	DefaultFloodTTL = 3
	MaxFloodTTL     = 7
	MaxFloodHits    = 50 // hits per reply message, and answered per query from local torrents
	// MaxFloodMsgLen bounds one message; longer ones are refused. It fits
	// the smallest message cap of shoal's peer connections (a 16 KiB block
	// message), so a reply never gets its sender's connection dropped.
	MaxFloodMsgLen   = 16000
	DefaultFloodSeen = 4096 // query ids remembered
)

// ErrFloodMsg is returned for a malformed flood message.
var ErrFloodMsg = errors.New("catalog: bad shoal_search message")

// FloodHit is one torrent in a reply.
type FloodHit struct {
	Files    int    `bencode:"f"`
	InfoHash []byte `bencode:"ih"`
	Name     string `bencode:"n"`
	Size     int64  `bencode:"s"`
}

// FloodMsg is a query (Q set) or a reply (Hits set).
type FloodMsg struct {
	ID   string     `bencode:"id"`
	Q    string     `bencode:"q,omitempty"`
	Hits []FloodHit `bencode:"r,omitempty"`
	TTL  int        `bencode:"ttl,omitempty"`
}

// IsQuery says whether m is a query (else a reply).
func (m *FloodMsg) IsQuery() bool { return m.Q != "" }

// MarshalFlood encodes m.
func MarshalFlood(m FloodMsg) ([]byte, error) {
	b, err := bencode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("catalog: encoding shoal_search message: %w", err)
	}
	return b, nil
}

// ParseFlood decodes and validates one message. Lengths are checked before
// the decoder allocates anything from the payload.
func ParseFlood(b []byte) (FloodMsg, error) {
	var m FloodMsg
	if len(b) > MaxFloodMsgLen {
		return m, fmt.Errorf("%w: %d bytes, max %d", ErrFloodMsg, len(b), MaxFloodMsgLen)
	}
	if err := bencode.UnmarshalLimits(b, &m, bencode.Limits{Lenient: true}); err != nil {
		return m, fmt.Errorf("%w: %v", ErrFloodMsg, err)
	}
	switch {
	case len(m.ID) != FloodIDLen:
		return m, fmt.Errorf("%w: id of %d bytes, want %d", ErrFloodMsg, len(m.ID), FloodIDLen)
	case m.Q != "" && len(m.Hits) > 0:
		return m, fmt.Errorf("%w: both a query and hits", ErrFloodMsg)
	case m.Q == "" && len(m.Hits) == 0:
		return m, fmt.Errorf("%w: neither a query nor hits", ErrFloodMsg)
	case len(m.Q) > MaxQueryLen || !utf8.ValidString(m.Q):
		return m, fmt.Errorf("%w: query longer than %d bytes or not UTF-8", ErrFloodMsg, MaxQueryLen)
	case m.Q != "" && (m.TTL < 1):
		return m, fmt.Errorf("%w: ttl %d", ErrFloodMsg, m.TTL)
	case len(m.Hits) > MaxFloodHits:
		return m, fmt.Errorf("%w: %d hits, max %d", ErrFloodMsg, len(m.Hits), MaxFloodHits)
	}
	m.TTL = min(m.TTL, MaxFloodTTL)
	for _, h := range m.Hits {
		if len(h.InfoHash) != 20 || h.Name == "" || len(h.Name) > MaxNameLen || !utf8.ValidString(h.Name) || h.Size < 0 || h.Files < 0 {
			return m, fmt.Errorf("%w: bad hit", ErrFloodMsg)
		}
	}
	return m, nil
}

// floodHitOverhead bounds the encoded bytes of a hit besides its name.
const floodHitOverhead = 80

// fitHits keeps the leading hits whose encoding fits in one message.
func fitHits(hs []FloodHit) []FloodHit {
	n := 64 // the message's own keys
	for i, h := range hs {
		n += floodHitOverhead + len(h.Name)
		if n > MaxFloodMsgLen || i >= MaxFloodHits {
			return hs[:i]
		}
	}
	return hs
}

// HitOf makes a FloodHit from a catalog entry.
func HitOf(e Entry) FloodHit {
	return FloodHit{Files: max(1, len(e.Files)), InfoHash: e.InfoHash[:], Name: e.Name, Size: e.Size}
}

// Result converts a hit for printing and merging with directory results.
// Flood hits carry no score from a store: every one scores 1.
func (h FloodHit) Result() Result {
	var ih metainfo.Hash
	copy(ih[:], h.InfoHash)
	e := Entry{InfoHash: ih, Name: h.Name, Size: h.Size}
	return Result{InfoHash: ih.String(), Name: h.Name, Size: h.Size, NumFiles: h.Files, Files: []FileEntry{},
		Magnet: e.Magnet(), Score: 1}
}

// MatchLocal returns the entries of es that match q as the Store does for
// exact hits (every normalised query word a substring of the normalised
// name or of one file path), at most limit of them, as hits.
func MatchLocal(q string, es []Entry, limit int) []FloodHit {
	words := strings.Fields(Normalize(q))
	if len(words) == 0 {
		return nil
	}
	var out []FloodHit
	for _, e := range es {
		if len(out) >= limit {
			break
		}
		if matchesAll(words, Normalize(e.Name)) {
			out = append(out, HitOf(e))
			continue
		}
		for _, f := range e.Files {
			if matchesAll(words, Normalize(f.Path)) {
				out = append(out, HitOf(e))
				break
			}
		}
	}
	return out
}

func matchesAll(words []string, s string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
