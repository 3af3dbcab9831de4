package caadmin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/enroll"
)

// maxJSONBytes bounds a JSON request body.
const maxJSONBytes = 16 << 10

// IssueParams are the query parameters of an issuance.
type IssueParams struct {
	Profile  ca.Profile
	Lifetime time.Duration // 0: the profile's default
}

// ParseIssueParams parses ?profile=client|server[&lifetime=<Go duration>]
// and checks the lifetime against the CA's profile lifetimes (cfg).
func ParseIssueParams(q url.Values, cfg ca.Config) (IssueParams, error) {
	for k, v := range q {
		if k != "profile" && k != "lifetime" {
			return IssueParams{}, fmt.Errorf("unknown parameter %q: want profile and optionally lifetime", k)
		}
		if len(v) != 1 {
			return IssueParams{}, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	p := IssueParams{Profile: ca.Profile(q.Get("profile"))}
	var max time.Duration
	switch p.Profile {
	case ca.ProfileClient:
		max = cfg.ClientLifetime
	case ca.ProfileServer:
		max = cfg.ServerLifetime
	default:
		return IssueParams{}, fmt.Errorf("profile %q: want %q or %q", q.Get("profile"), ca.ProfileClient, ca.ProfileServer)
	}
	if s := q.Get("lifetime"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return IssueParams{}, fmt.Errorf("lifetime %q: want a positive duration such as 12h", s)
		}
		if d > max {
			return IssueParams{}, fmt.Errorf("lifetime %v: at most %v for a %s certificate", d, max, p.Profile)
		}
		p.Lifetime = d
	}
	return p, nil
}

// RevokeRequest is the body of POST /api/ca/revoke.
type RevokeRequest struct {
	Serial *big.Int
	Reason string // a name of ca.Reasons
}

// ParseRevokeRequest parses {"serial": "hex", "reason": "keyCompromise"}.
func ParseRevokeRequest(body []byte) (RevokeRequest, error) {
	var in struct {
		Serial string `json:"serial"`
		Reason string `json:"reason"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return RevokeRequest{}, err
	}
	if in.Serial == "" || in.Reason == "" {
		return RevokeRequest{}, errors.New(`"serial" and "reason" are required`)
	}
	n, err := ca.ParseSerial(in.Serial)
	if err != nil {
		return RevokeRequest{}, err
	}
	if _, err := ca.ParseReason(in.Reason); err != nil {
		return RevokeRequest{}, err
	}
	return RevokeRequest{Serial: n, Reason: in.Reason}, nil
}

// TokenRequest is the body of POST /api/ca/tokens.
type TokenRequest struct {
	Constraints enroll.Constraints
	TTL         time.Duration
}

// DefaultTokenTTL is the lifetime of a token when the request names none,
// as for `warden ca token`.
const DefaultTokenTTL = time.Hour

// ParseTokenRequest parses {"consumer", "cn", "dns", "uris", "ttl"}; the
// constraints themselves are checked by enroll.CreateToken.
func ParseTokenRequest(body []byte) (TokenRequest, error) {
	var in struct {
		Consumer string   `json:"consumer"`
		CN       string   `json:"cn"`
		DNS      []string `json:"dns"`
		URIs     []string `json:"uris"`
		TTL      string   `json:"ttl"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return TokenRequest{}, err
	}
	r := TokenRequest{Constraints: enroll.Constraints{Consumer: in.Consumer, CommonName: in.CN, DNSNames: in.DNS, URIs: in.URIs}, TTL: DefaultTokenTTL}
	if in.Consumer == "" {
		return TokenRequest{}, errors.New(`"consumer" is required`)
	}
	if in.CN == "" && len(in.DNS) == 0 && len(in.URIs) == 0 {
		return TokenRequest{}, errors.New(`the token must allow a name: "cn", "dns" or "uris"`)
	}
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 || d > enroll.MaxTokenTTL {
			return TokenRequest{}, fmt.Errorf("ttl %q: want a positive duration of at most %v", in.TTL, enroll.MaxTokenTTL)
		}
		r.TTL = d
	}
	return r, nil
}

// decodeStrict decodes one JSON object of at most maxJSONBytes into v:
// unknown fields, trailing data and other JSON types are refused.
func decodeStrict(body []byte, v any) error {
	if len(body) > maxJSONBytes {
		return fmt.Errorf("body larger than %d bytes", maxJSONBytes)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("body: want a JSON object: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body: trailing data after the JSON object")
	}
	return nil
}
