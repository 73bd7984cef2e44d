package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// dialect is what differs between the SQL backends.
type dialect interface {
	// ph returns the placeholder for the n-th (1-based) argument; text marks
	// a text argument (PostgreSQL needs the type where it cannot infer it).
	ph(n int, text bool) string
	// contains returns an integer 0/1 expression: needle is a substring of col.
	contains(col, needle string) string
	// length returns the character length of expr.
	length(expr string) string
	// exactWhere returns a WHERE condition selecting rows whose doc contains
	// every word of p.
	exactWhere(p plan, a *args) string
	// fuzzySQL returns a query of rowCols for rows that may share trigrams
	// with p.phrase, at most limit rows; prelude runs first in the same
	// transaction when non-empty.
	fuzzySQL(p plan, a *args, limit int) (prelude, query string)
}

// args collects query arguments and hands out placeholders.
type args struct {
	d    dialect
	vals []any
}

func (a *args) text(v string) string { a.vals = append(a.vals, v); return a.d.ph(len(a.vals), true) }
func (a *args) num(v int) string     { a.vals = append(a.vals, v); return a.d.ph(len(a.vals), false) }

// rowCols are the columns scanRow reads, in order.
const rowCols = "info_hash, name, size, files, added, seeders, leechers, name_norm, doc"

// sqlStore is a Store over database/sql; the dialect supplies the SQL that
// differs. db is safe for concurrent use; the rest is static after construction.
type sqlStore struct {
	db *sql.DB
	d  dialect
}

func (s *sqlStore) Close() error { return s.db.Close() }

func (s *sqlStore) upsertSQL() string {
	p := func(n int) string { return s.d.ph(n, false) }
	return fmt.Sprintf(`INSERT INTO torrents (info_hash, name, size, files, added, name_norm, doc)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (info_hash) DO UPDATE SET name = excluded.name, size = excluded.size, files = excluded.files,
 name_norm = excluded.name_norm, doc = excluded.doc`, p(1), p(2), p(3), p(4), p(5), p(6), p(7))
}

func putArgs(e Entry) ([]any, error) {
	e, name, doc, err := prepare(e)
	if err != nil {
		return nil, err
	}
	files := e.Files
	if files == nil {
		files = []FileEntry{}
	}
	fj, err := json.Marshal(files)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode files: %w", err)
	}
	return []any{e.InfoHash.String(), e.Name, e.Size, string(fj), e.Added.Unix(), name, doc}, nil
}

// Put implements Store.
func (s *sqlStore) Put(ctx context.Context, e Entry) error {
	return s.PutBatch(ctx, []Entry{e})
}

// PutBatch implements BatchPutter: every entry in one transaction, all or none.
func (s *sqlStore) PutBatch(ctx context.Context, es []Entry) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	st, err := tx.PrepareContext(ctx, s.upsertSQL())
	if err != nil {
		return fmt.Errorf("catalog: prepare put: %w", err)
	}
	defer st.Close()
	for _, e := range es {
		a, err := putArgs(e)
		if err != nil {
			return fmt.Errorf("put %s: %w", e.InfoHash, err)
		}
		if _, err := st.ExecContext(ctx, a...); err != nil {
			return fmt.Errorf("catalog: put %s: %w", e.InfoHash, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	return nil
}

// SetSeeders implements Store.
func (s *sqlStore) SetSeeders(ctx context.Context, ih metainfo.Hash, seeders, leechers int) error {
	q := fmt.Sprintf("UPDATE torrents SET seeders = %s, leechers = %s WHERE info_hash = %s",
		s.d.ph(1, false), s.d.ph(2, false), s.d.ph(3, false))
	res, err := s.db.ExecContext(ctx, q, max(0, seeders), max(0, leechers), ih.String())
	if err != nil {
		return fmt.Errorf("catalog: set seeders %s: %w", ih, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("set seeders %s: %w", ih, ErrNotFound)
	}
	return nil
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, ih metainfo.Hash) (Hit, error) {
	q := "SELECT " + rowCols + " FROM torrents WHERE info_hash = " + s.d.ph(1, false)
	rows, err := s.db.QueryContext(ctx, q, ih.String())
	if err != nil {
		return Hit{}, fmt.Errorf("catalog: get %s: %w", ih, err)
	}
	hs, err := scanRows(rows, false)
	if err != nil {
		return Hit{}, err
	}
	if len(hs) == 0 {
		return Hit{}, fmt.Errorf("get %s: %w", ih, ErrNotFound)
	}
	return hs[0].Hit, nil
}

// row is a scanned hit with its normalised text.
type row struct {
	Hit
	nameNorm, doc string
}

func scanRows(rows *sql.Rows, withScore bool) ([]row, error) {
	defer rows.Close()
	var out []row
	for rows.Next() {
		var (
			r     row
			ih    string
			files string
			added int64
		)
		dst := []any{&ih, &r.Name, &r.Size, &files, &added, &r.Seeders, &r.Leechers, &r.nameNorm, &r.doc}
		if withScore {
			dst = append(dst, &r.Score)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("catalog: scan: %w", err)
		}
		h, err := metainfo.ParseHash(ih)
		if err != nil {
			return nil, fmt.Errorf("catalog: stored info-hash %q: %w", ih, err)
		}
		r.InfoHash = h
		r.Added = time.Unix(added, 0).UTC()
		if err := json.Unmarshal([]byte(files), &r.Files); err != nil {
			return nil, fmt.Errorf("catalog: stored files of %s: %w", ih, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: rows: %w", err)
	}
	return out, nil
}

// scoreExpr is exactScore in SQL.
func (s *sqlStore) scoreExpr(p plan, a *args) string {
	var b strings.Builder
	fmt.Fprintf(&b, "1 + %s * (4 + 1.0 * %s / (CASE WHEN %s > 0 THEN %s ELSE 1 END))",
		s.d.contains("name_norm", a.text(p.phrase)), s.d.length(a.text(p.phrase)),
		s.d.length("name_norm"), s.d.length("name_norm"))
	b.WriteString(" + 2")
	for _, w := range p.words {
		b.WriteString(" * " + s.d.contains("name_norm", a.text(w)))
	}
	b.WriteString(" + " + s.d.contains("doc", a.text(p.phrase)))
	return b.String()
}

// Search implements Store.
func (s *sqlStore) Search(ctx context.Context, q Query) ([]Hit, int, error) {
	p, err := makePlan(q.Text)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: empty after normalising", err)
	}
	limit, offset := q.Limit, q.Offset
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	offset = min(max(offset, 0), MaxOffset)

	ca := &args{d: s.d}
	var total int
	cq := "SELECT count(*) FROM torrents WHERE " + s.d.exactWhere(p, ca)
	if err := s.db.QueryRowContext(ctx, cq, ca.vals...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("catalog: count %q: %w", p.phrase, err)
	}
	if total >= FuzzyBelow || len([]rune(p.phrase)) < 3 {
		hs, err := s.exact(ctx, p, limit, offset)
		return hs, total, err
	}
	// Few exact hits: add trigram-similar entries after them.
	exact, err := s.exact(ctx, p, FuzzyBelow, 0)
	if err != nil {
		return nil, 0, err
	}
	fuzzy, err := s.fuzzy(ctx, p)
	if err != nil {
		return nil, 0, err
	}
	seen := map[metainfo.Hash]bool{}
	all := exact
	for _, h := range exact {
		seen[h.InfoHash] = true
	}
	for _, h := range fuzzy {
		if !seen[h.InfoHash] {
			all = append(all, h)
		}
	}
	sortHits(all)
	total = len(all)
	if offset >= len(all) {
		return []Hit{}, total, nil
	}
	return all[offset:min(len(all), offset+limit)], total, nil
}

func (s *sqlStore) exact(ctx context.Context, p plan, limit, offset int) ([]Hit, error) {
	a := &args{d: s.d}
	score := s.scoreExpr(p, a)
	where := s.d.exactWhere(p, a)
	q := fmt.Sprintf("SELECT %s, %s AS score FROM torrents WHERE %s ORDER BY score DESC, seeders DESC, name_norm, info_hash LIMIT %s OFFSET %s",
		rowCols, score, where, a.num(limit), a.num(offset))
	rows, err := s.db.QueryContext(ctx, q, a.vals...)
	if err != nil {
		return nil, fmt.Errorf("catalog: search %q: %w", p.phrase, err)
	}
	rs, err := scanRows(rows, true)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(rs))
	for i, r := range rs {
		out[i] = r.Hit
	}
	return out, nil
}

func (s *sqlStore) fuzzy(ctx context.Context, p plan) ([]Hit, error) {
	a := &args{d: s.d}
	prelude, q := s.d.fuzzySQL(p, a, fuzzyCandidates)
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: prelude == ""})
	if err != nil {
		return nil, fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	if prelude != "" {
		if _, err := tx.ExecContext(ctx, prelude); err != nil {
			return nil, fmt.Errorf("catalog: fuzzy prelude: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, q, a.vals...)
	if err != nil {
		return nil, fmt.Errorf("catalog: fuzzy search %q: %w", p.phrase, err)
	}
	rs, err := scanRows(rows, false)
	if err != nil {
		return nil, err
	}
	tri := trigrams(p.phrase)
	var out []Hit
	for _, r := range rs {
		sim := similarity(tri, r.doc)
		if sim >= FuzzyMinSimilarity {
			r.Score = 0.99 * sim
			out = append(out, r.Hit)
		}
	}
	return out, nil
}

// sortHits orders hits best first: score, then seeders, then name and hash.
func sortHits(hs []Hit) {
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Seeders != b.Seeders {
			return a.Seeders > b.Seeders
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return strings.Compare(a.InfoHash.String(), b.InfoHash.String()) < 0
	})
}
