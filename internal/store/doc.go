// Package store keeps Warden's persistent records: consumers and their API
// keys, step-up TOTP enrollments and approvals, the internal CA's issued
// certificates, revocations and CRL numbers, and enrollment tokens.
//
// The embedded default is one local SQLite file, through the pure-Go
// modernc.org/sqlite driver (no cgo). A cluster will keep the same records
// in PostgreSQL behind the same methods, so the surface is deliberately
// narrow and typed (no query strings cross it), and the SQL is portable:
// TEXT, BIGINT and BOOLEAN columns only, times as Unix microseconds, hashes
// as hex, INSERT … ON CONFLICT DO NOTHING instead of driver error codes.
//
// # The file
//
// Open creates the file with mode 0600 if it does not exist (SQLite gives
// its -wal and -shm companions the same mode) and sets, on every
// connection: WAL journaling (readers never wait for a writer),
// synchronous=FULL (a committed record survives a power cut), foreign keys
// on, and a busy timeout (BusyTimeout) so that writers from several
// processes — the gateway and a `warden keys` command, say — queue behind
// SQLite's file lock instead of failing. Every write transaction begins
// IMMEDIATE, taking the write lock up front, so two writers never deadlock
// on a lock upgrade.
//
// # Schema
//
// Migrations are numbered SQL files embedded in the binary
// (migrations/NNNN_name.sql). Open applies the missing ones in order, each
// in its own transaction together with its row in schema_migrations, so a
// crash leaves the schema at a whole version. A file whose schema is newer
// than the binary is refused rather than misread.
//
// # Durability
//
// Every method returns only after its transaction has committed. Callers
// that hand out a secret (a new API key) must do so only after the method
// that records it has returned nil.
package store
