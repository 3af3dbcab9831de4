package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their numbers must
// run 1, 2, 3… without gaps or duplicates.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: numbers must run from 1 without gaps", m.version, m.name)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this binary brings a store to.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// migrate applies the missing migrations, each in one transaction with its
// schema_migrations row. Concurrent Opens of one file serialize on the
// write lock; the later one finds the work done.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	// In a BEGIN IMMEDIATE transaction, so that processes opening a new
	// file at once wait on the busy timeout instead of failing on SQLite's
	// lock-upgrade deadlock (SQLITE_BUSY without waiting).
	err = s.tx(ctx, func(t *sql.Tx) error {
		_, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at BIGINT  NOT NULL
)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if int(have.Int64) > len(ms) {
		return fmt.Errorf("schema version %d is newer than this warden knows (%d): upgrade warden", have.Int64, len(ms))
	}
	for _, m := range ms {
		if m.version <= int(have.Int64) {
			continue
		}
		err := s.tx(ctx, func(t *sql.Tx) error {
			var one int
			err := t.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version).Scan(&one)
			if err == nil {
				return nil // another process applied it meanwhile
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := t.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}
