package tlsserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Profile names a protocol-version policy.
type Profile string

// Profiles.
const (
	// Modern allows TLS 1.3 only.
	Modern Profile = "modern"
	// Intermediate allows TLS 1.3 and TLS 1.2; TLS 1.2 only with ECDHE key
	// exchange and AEAD ciphers (AES-GCM, ChaCha20-Poly1305).
	Intermediate Profile = "intermediate"
)

// ParseProfile parses a profile name; the empty string gives DefaultProfile.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return DefaultProfile, nil
	case Modern, Intermediate:
		return p, nil
	}
	return "", fmt.Errorf("unknown TLS profile %q (want %q or %q)", s, Modern, Intermediate)
}

// MinVersion returns the lowest protocol version the profile allows.
func (p Profile) MinVersion() uint16 {
	if p == Modern {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// allowedSuite reports whether id is one of the TLS 1.2 suites the policy
// allows (ECDHE + AEAD).
func allowedSuite(id uint16) bool { return slices.Contains(DefaultCipherSuites(), id) }

// suiteAliases maps legacy Go names of allowed suites to their IANA names.
var suiteAliases = map[string]string{
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// CipherSuiteByName returns the ID of an allowed TLS 1.2 cipher suite given
// its IANA (or Go) name, case-insensitively. Known but forbidden suites get
// an error saying why; TLS 1.3 suites are refused because TLS 1.3 fixes them.
func CipherSuiteByName(name string) (uint16, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if a, ok := suiteAliases[n]; ok {
		n = a
	}
	for _, s := range tls.CipherSuites() {
		if s.Name == n && allowedSuite(s.ID) {
			return s.ID, nil
		}
	}
	for _, s := range tls.CipherSuites() {
		if s.Name == n && slices.Equal(s.SupportedVersions, []uint16{tls.VersionTLS13}) {
			return 0, fmt.Errorf("%s: TLS 1.3 cipher suites are fixed by the protocol and not configurable", n)
		}
	}
	if why := suiteWeakness(n); why != "" {
		return 0, fmt.Errorf("%s: %s", n, why)
	}
	return 0, fmt.Errorf("%q: unknown cipher suite", name)
}

// suiteWeakness says why an IANA-style suite name is forbidden, or "" when
// the name shows no known weakness.
func suiteWeakness(n string) string {
	kex, bulk, ok := strings.Cut(strings.TrimPrefix(n, "TLS_"), "_WITH_")
	if !ok || !strings.HasPrefix(n, "TLS_") {
		return ""
	}
	var why []string
	switch {
	case kex == "RSA":
		why = append(why, "static RSA key exchange has no forward secrecy")
	case strings.Contains(kex, "ANON"):
		why = append(why, "anonymous key exchange does not authenticate the server")
	case strings.HasPrefix(kex, "DHE") || strings.HasPrefix(kex, "DH_"):
		why = append(why, "finite-field Diffie-Hellman is not allowed (ECDHE only)")
	case strings.Contains(kex, "PSK") || strings.Contains(kex, "SRP") || strings.Contains(kex, "KRB5"):
		why = append(why, "key exchange "+kex+" is not allowed (ECDHE only)")
	case strings.HasPrefix(kex, "ECDH_"):
		why = append(why, "static ECDH key exchange has no forward secrecy")
	}
	switch {
	case strings.Contains(kex, "EXPORT") || strings.Contains(bulk, "EXPORT"):
		why = append(why, "export-grade cryptography is broken")
	case strings.HasPrefix(bulk, "NULL"):
		why = append(why, "NULL cipher does not encrypt")
	case strings.HasPrefix(bulk, "RC4"):
		why = append(why, "RC4 is broken")
	case strings.HasPrefix(bulk, "3DES"):
		why = append(why, "3DES has a 64-bit block (Sweet32) and no AEAD")
	case strings.Contains(bulk, "_CBC_"):
		why = append(why, "CBC mode is not allowed (no AEAD)")
	case strings.HasPrefix(bulk, "DES") || strings.HasPrefix(bulk, "IDEA") || strings.HasPrefix(bulk, "SEED") ||
		strings.HasPrefix(bulk, "CAMELLIA") || strings.HasPrefix(bulk, "ARIA") || strings.HasPrefix(bulk, "AES_128_CCM") ||
		strings.HasPrefix(bulk, "AES_256_CCM"):
		why = append(why, "cipher "+bulk+" is not allowed (AES-GCM or ChaCha20-Poly1305 only)")
	}
	return strings.Join(why, "; ")
}

// curveNames maps accepted spellings to key-exchange groups.
var curveNames = map[string]tls.CurveID{
	"X25519MLKEM768":     tls.X25519MLKEM768,
	"SECP256R1MLKEM768":  tls.SecP256r1MLKEM768,
	"SECP384R1MLKEM1024": tls.SecP384r1MLKEM1024,
	"X25519":             tls.X25519,
	"P-256":              tls.CurveP256,
	"P256":               tls.CurveP256,
	"SECP256R1":          tls.CurveP256,
	"PRIME256V1":         tls.CurveP256,
	"P-384":              tls.CurveP384,
	"P384":               tls.CurveP384,
	"SECP384R1":          tls.CurveP384,
	"P-521":              tls.CurveP521,
	"P521":               tls.CurveP521,
	"SECP521R1":          tls.CurveP521,
}

// refusedCurves maps known but forbidden groups to the reason.
var refusedCurves = map[string]string{
	"P-224":     "P-224 gives less than 128-bit security",
	"P224":      "P-224 gives less than 128-bit security",
	"SECP224R1": "P-224 gives less than 128-bit security",
	"P-192":     "P-192 gives less than 128-bit security",
	"SECP192R1": "P-192 gives less than 128-bit security",
	"X448":      "X448 is not supported by Go's crypto/tls",
}

// allowedCurve reports whether id is a key exchange CurveByName accepts.
func allowedCurve(id tls.CurveID) bool {
	for _, c := range curveNames {
		if c == id {
			return true
		}
	}
	return false
}

// CurveByName returns the key-exchange group with the given name,
// case-insensitively: X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024,
// X25519, P-256 (also P256, secp256r1, prime256v1), P-384, P-521. Weaker or
// unsupported groups get an error saying why.
func CurveByName(name string) (tls.CurveID, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if id, ok := curveNames[n]; ok {
		return id, nil
	}
	if why, ok := refusedCurves[n]; ok {
		return 0, fmt.Errorf("curve %s: %s", name, why)
	}
	if strings.HasPrefix(n, "FFDHE") {
		return 0, fmt.Errorf("curve %s: finite-field groups are not allowed (ECDHE only)", name)
	}
	return 0, fmt.Errorf("curve %q: unknown key exchange group", name)
}

// VersionName returns a bounded, human-readable protocol version name for
// metrics and logs: "TLS 1.0" … "TLS 1.3", "SSL 3.0", or "unknown".
func VersionName(v uint16) string {
	switch v {
	case tls.VersionSSL30: //nolint:staticcheck // naming only
		return "SSL 3.0"
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return "unknown"
}

// CipherName returns the IANA name of a cipher suite Go knows, or "unknown",
// so that metric labels stay bounded whatever a peer sends.
func CipherName(id uint16) string {
	for _, s := range tls.CipherSuites() {
		if s.ID == id {
			return s.Name
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.ID == id {
			return s.Name
		}
	}
	return "unknown"
}

// errNoCertificates is returned by Validate when no certificate is set.
var errNoCertificates = errors.New("no certificates configured")
