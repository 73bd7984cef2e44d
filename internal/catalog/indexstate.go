package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// indexStateSchema remembers info-hashes sampled from the DHT, so that
// 'shoal index' resumes where it stopped. state: 0 pending, 1 indexed,
// 2 given up (tries reached the limit).
const indexStateSchema = `
CREATE TABLE IF NOT EXISTS dht_samples (
  info_hash TEXT PRIMARY KEY,
  state     INTEGER NOT NULL DEFAULT 0,
  tries     INTEGER NOT NULL DEFAULT 0,
  updated   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dht_samples_pending ON dht_samples(state, tries, updated);
`

// Sample states.
const (
	samplePending = 0
	sampleDone    = 1
	sampleFailed  = 2
)

// AddSamples records sampled info-hashes; ones already known (or already in
// the catalog) are left as they are. It returns how many were new.
func (s *SQLite) AddSamples(ctx context.Context, hs []metainfo.Hash, now time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	n := 0
	for _, h := range hs {
		res, err := tx.ExecContext(ctx, `INSERT INTO dht_samples (info_hash, state, updated)
SELECT ?1, CASE WHEN EXISTS (SELECT 1 FROM torrents WHERE info_hash = ?1) THEN 1 ELSE 0 END, ?2
ON CONFLICT (info_hash) DO NOTHING`, h.String(), now.Unix())
		if err != nil {
			return 0, fmt.Errorf("catalog: add sample %s: %w", h, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("catalog: commit samples: %w", err)
	}
	return n, nil
}

// PendingSamples returns up to n sampled info-hashes still to fetch, least
// tried first, skipping those in exclude.
func (s *SQLite) PendingSamples(ctx context.Context, n int, exclude map[metainfo.Hash]bool) ([]metainfo.Hash, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT info_hash FROM dht_samples WHERE state = 0 ORDER BY tries, updated LIMIT ?`, n+len(exclude))
	if err != nil {
		return nil, fmt.Errorf("catalog: pending samples: %w", err)
	}
	defer rows.Close()
	var out []metainfo.Hash
	for rows.Next() && len(out) < n {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("catalog: pending samples: %w", err)
		}
		h, err := metainfo.ParseHash(s)
		if err != nil || exclude[h] {
			continue
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// MarkSample records the outcome of one metadata fetch: done, or one more
// failed try (given up at maxTries).
func (s *SQLite) MarkSample(ctx context.Context, h metainfo.Hash, done bool, maxTries int, now time.Time) error {
	var err error
	if done {
		_, err = s.db.ExecContext(ctx, `UPDATE dht_samples SET state = 1, updated = ? WHERE info_hash = ?`, now.Unix(), h.String())
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE dht_samples SET tries = tries + 1, updated = ?,
 state = CASE WHEN tries + 1 >= ? THEN 2 ELSE 0 END WHERE info_hash = ?`, now.Unix(), maxTries, h.String())
	}
	if err != nil {
		return fmt.Errorf("catalog: mark sample %s: %w", h, err)
	}
	return nil
}

// SampleCounts returns how many sampled info-hashes are pending, indexed and given up.
func (s *SQLite) SampleCounts(ctx context.Context) (pending, done, failed int, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM dht_samples GROUP BY state`)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("catalog: sample counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st, n int
		if err := rows.Scan(&st, &n); err != nil {
			return 0, 0, 0, err
		}
		switch st {
		case samplePending:
			pending = n
		case sampleDone:
			done = n
		case sampleFailed:
			failed = n
		}
	}
	return pending, done, failed, rows.Err()
}
