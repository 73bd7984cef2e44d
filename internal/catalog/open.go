package catalog

import (
	"context"
	"strings"
)

// Open opens the store named by spec: a postgres:// or postgresql:// URL
// selects PostgreSQL, anything else is a SQLite file path (":memory:" too).
func Open(ctx context.Context, spec string) (Store, error) {
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		return OpenPostgres(ctx, spec)
	}
	return OpenSQLite(ctx, spec)
}
