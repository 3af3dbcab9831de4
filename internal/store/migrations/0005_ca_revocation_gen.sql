-- 0005: a revocation generation per issuing CA, incremented in the same
-- transaction as every revocation it records (RevokeIssued). A gateway
-- running the internal CA reads it on each mTLS check (one primary-key
-- lookup) and re-reads its revoked serials only when it changed, so that a
-- revocation made by another process (`warden ca revoke`) takes effect at
-- the gateway's next request.
--
-- Portable SQL, as in 0001.

CREATE TABLE ca_revocation_gen (
    issuer TEXT   NOT NULL PRIMARY KEY,
    gen    BIGINT NOT NULL
);

-- Issuers with revocations recorded before this migration start at 1.
INSERT INTO ca_revocation_gen (issuer, gen)
SELECT DISTINCT issuer, 1 FROM ca_issued WHERE revoked_at IS NOT NULL;
