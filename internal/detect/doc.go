// Package detect is the home of Warden's detectors: signals that a man in
// the middle is at work even when every handshake succeeds. Each detector
// lives in its own subpackage and reports through internal/audit:
//
//   - ct: certificate-transparency monitoring of the operator's own
//     domains; a certificate for a watched name with a key the operator does
//     not hold is the first step of a MITM.
//
// JA4 ClientHello fingerprints, baselines and traffic anomalies will join it.
package detect
