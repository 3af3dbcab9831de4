package expiry

import (
	"crypto/x509"

	"github.com/wardengw/warden/internal/pki"
)

// Kinds of pin Finding.
const (
	// PinsMissPlanned: no pin matches the planned (post-rotation) chain;
	// once it is deployed every connection is refused.
	PinsMissPlanned = "pins_miss_planned"
	// PinsMissCurrent: no pin matches the chain in use now.
	PinsMissCurrent = "pins_miss_current"
	// NoBackupPin: every pin is a key of the current chain (or there is a
	// single pin), so losing or rotating that key cuts the upstream off.
	NoBackupPin = "no_backup_pin"
	// PinsMatchNoLocalCert: no pin matches a certificate Warden has
	// locally (the upstream's ca_file). Informational: pins usually name
	// the upstream's own leaf or intermediate key, which only the live
	// endpoint shows (`warden pin host:port`).
	PinsMatchNoLocalCert = "pins_match_no_local_certificate"
)

// Finding is one problem found in a pin set.
type Finding struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"` // info, warning, critical (as in package audit)
	// Subject names what the pins belong to (an upstream).
	Subject string `json:"subject,omitempty"`
	Message string `json:"message"`
}

// CheckPins checks a pin set against the chain in use and the chain
// planned to replace it; either may be nil when unknown. It flags a set
// that matches no certificate of the planned chain (critical: the
// rotation would cut the upstream off), one that matches nothing of the
// current chain, and one with no backup pin: a pin matching no
// certificate of the current chain, or, with the current chain unknown, a
// second pin. An empty set (pinning off) has no findings.
func CheckPins(pins pki.PinSet, current, planned []*x509.Certificate) []Finding {
	if len(pins) == 0 {
		return nil
	}
	var out []Finding
	if planned != nil && !pins.MatchChain(planned) {
		out = append(out, Finding{Kind: PinsMissPlanned, Severity: "critical",
			Message: "no pin matches any certificate of the planned chain: after the rotation every connection will be refused; add the new key's pin first"})
	}
	if current != nil && !pins.MatchChain(current) {
		out = append(out, Finding{Kind: PinsMissCurrent, Severity: "critical",
			Message: "no pin matches any certificate of the current chain"})
	}
	backup := len(pins) > 1
	if current != nil {
		backup = false
		for _, p := range pins {
			if !matchesAny(p, current) {
				backup = true
				break
			}
		}
	}
	if !backup {
		msg := "no backup pin: every pin is a key of the current chain, so rotating or losing that key cuts the upstream off"
		if current == nil {
			msg = "a single pin and no backup pin: rotating or losing that key cuts the upstream off"
		}
		out = append(out, Finding{Kind: NoBackupPin, Severity: "warning", Message: msg})
	}
	return out
}

func matchesAny(p pki.Pin, chain []*x509.Certificate) bool {
	for _, c := range chain {
		if (pki.PinSet{p}).Contains(pki.SPKIPin(c)) {
			return true
		}
	}
	return false
}
