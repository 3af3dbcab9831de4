package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
)

// ManagedCertDir is the folder, next to the record store, where the
// gateway keeps the certificates and keys it manages (mode 0700, files
// 0600), so that a restart reuses a certificate still valid.
const ManagedCertDir = "managed-certs"

// Key identifies an internal_ca entry by every parameter: the gateway keeps
// the source of an entry whose key is unchanged across reloads, and names
// its persisted certificate after it.
func (s InternalCACertificate) Key() string {
	b, err := json.Marshal(s)
	if err != nil { // plain strings and a duration: cannot happen
		panic(err)
	}
	return "internal_ca " + string(b)
}

// InternalCACertPath is the file in which the gateway persists the key and
// chain it obtains for the internal_ca entry spec from the CA that the
// records name issuerID (ca.IssuerID of its intermediate): in
// ManagedCertDir next to store.path. The gateway writes it; `warden certs`
// reads it.
func (c *Config) InternalCACertPath(issuerID string, spec InternalCACertificate) string {
	id := sha256.Sum256([]byte(issuerID + "\n" + spec.Key()))
	return filepath.Join(filepath.Dir(c.PathOf(c.Store.Path)), ManagedCertDir, "internal-ca-"+hex.EncodeToString(id[:8])+".pem")
}
