package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite", with FTS5
)

// sqliteSchema: the torrents table and an external-content FTS5 index of
// doc with the trigram tokenizer, kept in step by triggers. Seeder updates do
// not touch the index.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS torrents (
  id        INTEGER PRIMARY KEY,
  info_hash TEXT NOT NULL UNIQUE,
  name      TEXT NOT NULL,
  size      INTEGER NOT NULL,
  files     TEXT NOT NULL,
  added     INTEGER NOT NULL,
  seeders   INTEGER NOT NULL DEFAULT 0,
  leechers  INTEGER NOT NULL DEFAULT 0,
  name_norm TEXT NOT NULL,
  doc       TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS torrents_fts USING fts5(doc, content='torrents', content_rowid='id', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS torrents_ai AFTER INSERT ON torrents BEGIN
  INSERT INTO torrents_fts(rowid, doc) VALUES (new.id, new.doc);
END;
CREATE TRIGGER IF NOT EXISTS torrents_ad AFTER DELETE ON torrents BEGIN
  INSERT INTO torrents_fts(torrents_fts, rowid, doc) VALUES ('delete', old.id, old.doc);
END;
CREATE TRIGGER IF NOT EXISTS torrents_au AFTER UPDATE OF doc ON torrents BEGIN
  INSERT INTO torrents_fts(torrents_fts, rowid, doc) VALUES ('delete', old.id, old.doc);
  INSERT INTO torrents_fts(rowid, doc) VALUES (new.id, new.doc);
END;
`

// SQLite is the embedded Store: one file (or ":memory:").
type SQLite struct {
	sqlStore
}

// OpenSQLite opens or creates the catalog database at path (":memory:" for a
// private in-memory one).
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	mem := path == ":memory:" || path == ""
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("catalog: sqlite path %q: must not contain '?' or '#'", path)
	}
	dsn := "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if mem {
		dsn = "file::memory:?_txlock=immediate"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: open sqlite %s: %w", path, err)
	}
	if mem {
		db.SetMaxOpenConns(1) // each connection would be its own database
	}
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: sqlite schema in %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, indexStateSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: sqlite index state schema in %s: %w", path, err)
	}
	return &SQLite{sqlStore{db: db, d: sqliteDialect{}}}, nil
}

type sqliteDialect struct{}

func (sqliteDialect) ph(int, bool) string           { return "?" }
func (sqliteDialect) contains(col, n string) string { return "(instr(" + col + ", " + n + ") > 0)" }
func (sqliteDialect) length(e string) string        { return "length(" + e + ")" }

// ftsPhrase quotes s as an FTS5 string (a trigram phrase = exact substring).
func ftsPhrase(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (d sqliteDialect) exactWhere(p plan, a *args) string {
	var conds, match []string
	for _, w := range p.words {
		if len([]rune(w)) >= 3 {
			match = append(match, ftsPhrase(w))
		}
	}
	if len(match) > 0 {
		conds = append(conds, "id IN (SELECT rowid FROM torrents_fts WHERE torrents_fts MATCH "+a.text(strings.Join(match, " AND "))+")")
	}
	for _, w := range p.words {
		conds = append(conds, d.contains("doc", a.text(w)))
	}
	return strings.Join(conds, " AND ")
}

func (sqliteDialect) fuzzySQL(p plan, a *args, limit int) (string, string) {
	var terms []string
	for t := range trigrams(p.phrase) {
		terms = append(terms, ftsPhrase(t))
	}
	q := "SELECT " + rowCols + " FROM torrents WHERE id IN (SELECT rowid FROM torrents_fts WHERE torrents_fts MATCH " +
		a.text(strings.Join(terms, " OR ")) + " ORDER BY rank LIMIT " + a.num(limit) + ")"
	return "", q
}
