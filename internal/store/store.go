package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeout is how long a statement waits for another connection or
// process holding the database's write lock before failing.
const BusyTimeout = 5 * time.Second

// maxIdleConns keeps warm connections (with their prepared statements) for
// the request path.
const maxIdleConns = 8

// Errors callers can match with errors.Is.
var (
	// ErrNotFound: no record with that name or id.
	ErrNotFound = errors.New("not found")
	// ErrExists: a record with that name or id already exists.
	ErrExists = errors.New("already exists")
	// ErrRevoked: the key is revoked, so it cannot be rotated.
	ErrRevoked = errors.New("key is revoked")
	// ErrRotated: the key has already been rotated; rotate its successor.
	ErrRotated = errors.New("key has already been rotated")
)

// Store is an open record store. It is safe for concurrent use, and
// several Stores, in one process or several, may share one file.
type Store struct {
	db     *sql.DB
	path   string
	byID   *sql.Stmt
	revGen *sql.Stmt // RevocationGeneration, on every mTLS check of the internal CA's certificates
}

// Open opens the store file at path, creating it (mode 0600) if needed,
// and brings its schema up to date.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Create the file ourselves so that its mode is 0600 from the start;
	// SQLite would create it 0644.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxIdleConns(maxIdleConns)
	s := &Store{db: db, path: abs}
	ctx, cancel := context.WithTimeout(context.Background(), 4*BusyTimeout)
	defer cancel()
	if err := migrateRetrying(ctx, s); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if s.byID, err = db.PrepareContext(ctx, selectKey+` WHERE k.id = ?`); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if s.revGen, err = db.PrepareContext(ctx, `SELECT gen FROM ca_revocation_gen WHERE issuer = ?`); err != nil {
		s.byID.Close()
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// dsn is the driver's connection string for the file at abs: a file: URI
// (so that any character in the path is escaped) with the pragmas every
// connection gets.
func dsn(abs string) string {
	q := url.Values{}
	q.Set("mode", "rwc")
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	if u.Path != "" && u.Path[0] != '/' { // Windows: file:///C:/…
		u.Path = "/" + u.Path
	}
	return u.String()
}

// Path returns the absolute path of the store file.
func (s *Store) Path() string { return s.path }

// Close closes the store. Records are already durable; Close only releases
// connections.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.byID, s.revGen} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		return err
	}
	return t.Commit()
}

// Times are stored as Unix microseconds, NULL for the zero time. Values are
// truncated to the microsecond on the way in, so what is read back equals
// what was written.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// Round returns t as the store keeps it: UTC, truncated to the
// microsecond.
func Round(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// migrateRetrying runs the migrations, retrying while another process
// holds the new file's locks: SQLite answers SQLITE_BUSY at once, without
// the busy timeout, when two connections race to set up a fresh file
// (journal-mode switch, lock upgrade). It gives up when ctx ends.
func migrateRetrying(ctx context.Context, s *Store) error {
	wait := 5 * time.Millisecond
	for {
		err := s.migrate(ctx)
		if err == nil || !isBusy(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5 // SQLITE_BUSY and its extended codes
}
