// Package catalog is shoal's search index of torrents: the name, file list and
// size of each torrent, kept in a Store that answers substring queries.
//
// Matching works on normalised text (see Normalize): lower case, accents
// stripped, '.', '_', '-' and other separators turned into spaces. A query
// matches an entry when every query word is a substring of the entry's name or
// of one of its file paths. Exact matches are ranked first: the whole query in
// the name, then every word in the name, then matches in paths; ties go to the
// entry with more seeders. When an exact search finds fewer than FuzzyBelow
// hits, the store also looks for entries that share most of the query's
// trigrams, so a query with one typo still finds its item (those fuzzy hits
// score below 1, every exact hit scores 1 or more).
//
// Two backends run one conformance suite (catalogtest): SQLite (embedded, pure
// Go, FTS5 with the trigram tokenizer) and PostgreSQL (pg_trgm GIN indexes).
package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// Limits applied to what a Store accepts and to queries.
const (
	MaxNameLen     = 1024     // bytes of Entry.Name
	MaxStoredFiles = 1000     // files kept per entry (the rest are dropped, Size still counts them)
	MaxPathLen     = 4096     // bytes of one FileEntry.Path
	MaxDocLen      = 64 << 10 // bytes of normalised text indexed per entry
	MaxQueryLen    = 200      // bytes of Query.Text
	MaxLimit       = 200      // Query.Limit cap
	DefaultLimit   = 50
	MaxOffset      = 10000 // deepest page
	// FuzzyBelow: when an exact search has fewer hits than this, trigram
	// similarity hits are added after the exact ones.
	FuzzyBelow = 5
	// FuzzyMinSimilarity is the share of the query's trigrams an entry must
	// contain to be a fuzzy hit.
	FuzzyMinSimilarity = 0.5
	// fuzzyCandidates bounds the rows a fuzzy search scores.
	fuzzyCandidates = 2000
)

// Errors returned by stores.
var (
	ErrNotFound     = errors.New("catalog: torrent not found")
	ErrInvalidEntry = errors.New("catalog: invalid entry")
	ErrInvalidQuery = errors.New("catalog: invalid query")
)

// FileEntry is one file of a torrent; Path is slash-separated below the
// torrent's name.
type FileEntry struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
}

// Entry is what the catalog records about one torrent.
type Entry struct {
	InfoHash metainfo.Hash
	Name     string
	Files    []FileEntry
	Size     int64
	Added    time.Time
}

// Query is one search. Limit 0 means DefaultLimit.
type Query struct {
	Text   string
	Limit  int
	Offset int
}

// Hit is one search result.
type Hit struct {
	Entry
	Score    float64
	Seeders  int
	Leechers int
}

// Store keeps entries and answers searches. Implementations are safe for
// concurrent use.
type Store interface {
	// Put inserts or replaces the entry with e.InfoHash; seeder counts are kept.
	Put(ctx context.Context, e Entry) error
	// Search returns one page of hits, best first, and the total number of hits.
	Search(ctx context.Context, q Query) ([]Hit, int, error)
	// SetSeeders records swarm counts; ErrNotFound for an unknown torrent.
	SetSeeders(ctx context.Context, ih metainfo.Hash, seeders, leechers int) error
	// Get returns one entry with its counts; ErrNotFound if absent.
	Get(ctx context.Context, ih metainfo.Hash) (Hit, error)
	Close() error
}

// BatchPutter is an optional ability: many entries in one transaction.
type BatchPutter interface {
	PutBatch(ctx context.Context, es []Entry) error
}

// PutAll stores es, in one transaction when s is a BatchPutter.
func PutAll(ctx context.Context, s Store, es []Entry) error {
	if b, ok := s.(BatchPutter); ok {
		return b.PutBatch(ctx, es)
	}
	for _, e := range es {
		if err := s.Put(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Magnet returns a magnet link for the hit (BEP 9).
func (e Entry) Magnet() string {
	m := metainfo.Magnet{InfoHash: e.InfoHash, Name: e.Name}
	return m.String()
}

// FromInfo makes an Entry from a parsed info dictionary. Padding files are left out.
func FromInfo(info *metainfo.Info, added time.Time) Entry {
	e := Entry{InfoHash: info.Hash(), Name: info.Name, Size: info.TotalLength(), Added: added}
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		if len(e.Files) >= MaxStoredFiles {
			break
		}
		p := ""
		for i, c := range f.Path {
			if i > 0 {
				p += "/"
			}
			p += c
		}
		e.Files = append(e.Files, FileEntry{Path: p, Length: f.Length})
	}
	return e
}

// prepare validates e and returns it with capped files and its normalised
// name and document (name, then each path, separated by '\n').
func prepare(e Entry) (Entry, string, string, error) {
	if e.Name == "" || len(e.Name) > MaxNameLen || !utf8.ValidString(e.Name) {
		return e, "", "", fmt.Errorf("%w: name empty, longer than %d bytes or not UTF-8", ErrInvalidEntry, MaxNameLen)
	}
	if e.Size < 0 {
		return e, "", "", fmt.Errorf("%w: negative size", ErrInvalidEntry)
	}
	if len(e.Files) > MaxStoredFiles {
		e.Files = e.Files[:MaxStoredFiles]
	}
	name := Normalize(e.Name)
	doc := name
	for _, f := range e.Files {
		if len(f.Path) > MaxPathLen || !utf8.ValidString(f.Path) || f.Length < 0 {
			return e, "", "", fmt.Errorf("%w: file path too long, not UTF-8 or negative length", ErrInvalidEntry)
		}
		p := Normalize(f.Path)
		if len(doc)+1+len(p) > MaxDocLen {
			break
		}
		doc += "\n" + p
	}
	if e.Added.IsZero() {
		e.Added = time.Unix(0, 0)
	}
	e.Added = e.Added.UTC().Truncate(time.Second)
	return e, name, doc, nil
}
