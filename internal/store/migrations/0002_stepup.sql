-- 0002: step-up verification: enrolled TOTP secrets and out-of-band
-- approvals.
--
-- Portable SQL, as in 0001: times are BIGINT Unix microseconds, NULL when
-- absent; byte strings are lowercase hex TEXT. Consumers are names, not
-- foreign keys: a step-up consumer may come from a JWT or a client
-- certificate and have no row in consumers.

CREATE TABLE stepup_totp (
    consumer       TEXT   NOT NULL PRIMARY KEY,
    -- The TOTP shared secret (RFC 6238), hex. The gateway needs it in the
    -- clear to compute codes: the file's mode (0600) is what protects it.
    secret         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    -- The last accepted time step (Unix time / 30 s). A code is accepted
    -- only for a later step, so no code is ever accepted twice.
    last_used_step BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE stepup_approvals (
    -- 128 random bits, "apr_" + 32 hex digits.
    id         TEXT   NOT NULL PRIMARY KEY,
    consumer   TEXT   NOT NULL,
    route      TEXT   NOT NULL,
    method     TEXT   NOT NULL,
    -- Path and query of the request, for the operator deciding.
    target     TEXT   NOT NULL,
    -- SHA-256 over route, method, target and body, hex: the approval is
    -- good for that request only.
    digest     TEXT   NOT NULL,
    remote     TEXT   NOT NULL DEFAULT '',
    request_id TEXT   NOT NULL DEFAULT '',
    -- pending, approved, denied or used.
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    used_at    BIGINT
);

CREATE INDEX stepup_approvals_state ON stepup_approvals (state, created_at);
CREATE INDEX stepup_approvals_consumer ON stepup_approvals (consumer, state);
