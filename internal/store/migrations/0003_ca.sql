-- 0003: the internal CA: certificates it issued, their revocations, and
-- the number of the last CRL each issuing CA signed.
--
-- Portable SQL, as in 0001: times are BIGINT Unix microseconds, NULL when
-- absent. Serials are lowercase hex TEXT without leading zeros; an issuer
-- is the lowercase hex SHA-256 of its SubjectPublicKeyInfo.

CREATE TABLE ca_issued (
    serial      TEXT    NOT NULL PRIMARY KEY,
    issuer      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    -- The subject alternative names, one per line, each "dns:", "ip:",
    -- "uri:" or "email:" followed by the name.
    sans        TEXT    NOT NULL DEFAULT '',
    -- client or server.
    profile     TEXT    NOT NULL,
    not_before  BIGINT  NOT NULL,
    not_after   BIGINT  NOT NULL,
    issued_at   BIGINT  NOT NULL,
    -- The certificate, PEM.
    pem         TEXT    NOT NULL,
    revoked_at  BIGINT,
    -- RFC 5280 CRLReason code; meaningful when revoked_at is set.
    reason      INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX ca_issued_issuer ON ca_issued (issuer, issued_at);
CREATE INDEX ca_issued_revoked ON ca_issued (issuer, revoked_at);

CREATE TABLE ca_crl_numbers (
    issuer TEXT   NOT NULL PRIMARY KEY,
    number BIGINT NOT NULL
);
