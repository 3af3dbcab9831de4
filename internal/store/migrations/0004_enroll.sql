-- 0004: enrollment tokens: one-time secrets that let a new client get its
-- first certificate from the internal CA.
--
-- Portable SQL, as in 0001: times are BIGINT Unix microseconds, NULL when
-- absent; hashes are lowercase hex TEXT. The token itself is never stored,
-- only its SHA-256.

CREATE TABLE enroll_tokens (
    -- SHA-256 of the whole token string, hex.
    hash        TEXT   NOT NULL PRIMARY KEY,
    -- Who the token was made for (audit; a consumer name or a label).
    consumer    TEXT   NOT NULL,
    -- The only common name the certificate may carry; '' for none.
    common_name TEXT   NOT NULL DEFAULT '',
    -- The SANs the certificate may carry, one per line, each "dns:" or
    -- "uri:" followed by the name.
    names       TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- Set once, by the single successful use.
    used_at     BIGINT
);

CREATE INDEX enroll_tokens_expires ON enroll_tokens (expires_at);
