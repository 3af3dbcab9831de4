package store

import (
	"database/sql"
	"testing"
)

// ForceSchemaVersion records version as applied, as a newer warden would.
func ForceSchemaVersion(t testing.TB, path string, version int) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, version); err != nil {
		t.Fatal(err)
	}
}
