-- 0001: consumers and their API keys.
--
-- Portable SQL: it must also run on PostgreSQL. Times are BIGINT Unix
-- microseconds (UTC; timestamptz precision), NULL when absent; the key hash
-- is lowercase hex TEXT (no BLOB/BYTEA difference); metadata is a JSON
-- object in TEXT.

CREATE TABLE consumers (
    name       TEXT    NOT NULL PRIMARY KEY,
    metadata   TEXT    NOT NULL DEFAULT '{}',
    created_at BIGINT  NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE api_keys (
    -- The key's lookup id: public, random, part of the key string.
    id            TEXT   NOT NULL PRIMARY KEY,
    consumer      TEXT   NOT NULL REFERENCES consumers (name),
    -- SHA-256 of the key's secret part, hex. Never the key itself.
    hash          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    -- Set when the key was rotated: its successor, and the end of the
    -- window in which both are valid.
    replaced_by   TEXT   REFERENCES api_keys (id),
    overlap_until BIGINT
);

CREATE INDEX api_keys_consumer ON api_keys (consumer);
