package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// postgresSchema: doc carries a pg_trgm GIN index, which serves both the
// LIKE '%word%' exact matches and the <% similarity candidates.
const postgresSchema = `
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS torrents (
  info_hash TEXT PRIMARY KEY,
  name      TEXT NOT NULL,
  size      BIGINT NOT NULL,
  files     TEXT NOT NULL,
  added     BIGINT NOT NULL,
  seeders   INTEGER NOT NULL DEFAULT 0,
  leechers  INTEGER NOT NULL DEFAULT 0,
  name_norm TEXT NOT NULL,
  doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS torrents_doc_trgm ON torrents USING gin (doc gin_trgm_ops);
`

// Postgres is the Store for catalogs that outgrow one machine: PostgreSQL
// with the pg_trgm extension (created if missing, which needs the right).
type Postgres struct {
	sqlStore
}

// OpenPostgres connects to dsn ("postgres://user@host:port/db?sslmode=disable")
// and creates the schema if needed.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: connect postgres: %w", err)
	}
	if _, err := db.ExecContext(ctx, postgresSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: postgres schema: %w", err)
	}
	return &Postgres{sqlStore{db: db, d: postgresDialect{}}}, nil
}

type postgresDialect struct{}

func (postgresDialect) ph(n int, text bool) string {
	if text {
		return fmt.Sprintf("$%d::text", n)
	}
	return fmt.Sprintf("$%d", n)
}
func (postgresDialect) contains(col, n string) string {
	return "(strpos(" + col + ", " + n + ") > 0)::int"
}
func (postgresDialect) length(e string) string { return "char_length(" + e + ")" }

// likeEscape escapes LIKE's wildcards and its escape character '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (postgresDialect) exactWhere(p plan, a *args) string {
	conds := make([]string, 0, len(p.words))
	for _, w := range p.words {
		conds = append(conds, "doc LIKE "+a.text("%"+likeEscape(w)+"%"))
	}
	return strings.Join(conds, " AND ")
}

func (postgresDialect) fuzzySQL(p plan, a *args, limit int) (string, string) {
	q := "SELECT " + rowCols + " FROM torrents WHERE " + a.text(p.phrase) + " <% doc ORDER BY word_similarity(" +
		a.text(p.phrase) + ", doc) DESC LIMIT " + a.num(limit)
	return "SET LOCAL pg_trgm.word_similarity_threshold = 0.3", q
}
