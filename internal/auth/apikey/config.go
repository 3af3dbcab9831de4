package apikey

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/policy"
)

// Type is the policy type name used in configs.
const Type = "api_key"

func init() { policy.RegisterConfig(Type, New) }

// Config is the api_key policy's config block. Zero values mean the
// defaults of defaults.go.
type Config struct {
	// Header names the request header carrying the key, alone (no
	// scheme); empty means DefaultHeader. It may not be Authorization
	// (the jwt policy's) or a header the gateway or HTTP framing owns.
	Header string `yaml:"header"`
	// InsecureQueryKey, if set, names a query parameter from which the key
	// is also read when the header is absent. Query strings end up in
	// access logs, browser history and Referer headers, so this is off by
	// default and the gateway warns when it is on. Empty: a key found
	// anywhere in the query string is refused (key_in_query_refused).
	InsecureQueryKey string `yaml:"insecure_query_key"`
	// Consumers, when present, admits only keys of these consumers; others
	// get 403 consumer_not_authorized. Absent means any valid key. An
	// empty list is a config error.
	Consumers []string `yaml:"consumers"`
}

// Policy is the api_key policy: it authenticates the request's API key
// against the gateway's record store and sets the consumer.
type Policy struct {
	header     string          // canonical
	queryParam string          // "" unless insecure_query_key
	allow      map[string]bool // nil: any consumer
}

var _ policy.Policy = (*Policy)(nil)

// reservedHeaders may not carry the key: the policy removes its header
// from every request it sees, which would break the gateway or other
// policies.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Host": true, "Connection": true,
	"Content-Length": true, "Content-Type": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true, "X-Request-Id": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true,
	"Client-Cert": true, "Client-Cert-Chain": true, "Dpop": true, "Signature": true, "Signature-Input": true,
}

// New validates cfg, reporting every problem at once. It touches no file,
// network or store: the store is found at request time in policy.Env.
func New(cfg Config) (*Policy, error) {
	var errs []error
	p := &Policy{header: textproto.CanonicalMIMEHeaderKey(DefaultHeader), queryParam: cfg.InsecureQueryKey}
	if cfg.Header != "" {
		p.header = textproto.CanonicalMIMEHeaderKey(cfg.Header)
		if !httpguts.ValidHeaderFieldName(cfg.Header) {
			errs = append(errs, fmt.Errorf("header: %q is not a valid header name", cfg.Header))
		} else if reservedHeaders[p.header] {
			errs = append(errs, fmt.Errorf("header: %s cannot carry API keys: it belongs to HTTP, the gateway or another policy", p.header))
		}
	}
	if q := cfg.InsecureQueryKey; q != "" && (len(q) > 64 || strings.ContainsAny(q, "&=#?%+ \t\r\n")) {
		errs = append(errs, fmt.Errorf("insecure_query_key: %q is not a plain query parameter name", q))
	}
	if cfg.Consumers != nil {
		if len(cfg.Consumers) == 0 {
			errs = append(errs, errors.New("consumers: an empty list would deny everything; remove consumers to admit any valid key, or list who may pass"))
		}
		p.allow = map[string]bool{}
		for i, c := range cfg.Consumers {
			if c == "" {
				errs = append(errs, fmt.Errorf("consumers[%d]: empty name", i))
			}
			p.allow[c] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Header returns the canonical name of the header the key is read from.
// The policy removes it from the request before the upstream sees it.
func (p *Policy) Header() string { return p.header }

// Warnings lists the risky settings of this policy, for the gateway to
// log at every start and reload: insecure_query_key.
func (p *Policy) Warnings() []string {
	if p.queryParam == "" {
		return nil
	}
	return []string{fmt.Sprintf("api_key: insecure_query_key %q reads API keys from the query string, where access logs, proxies, browser history and Referer headers can record them", p.queryParam)}
}

// String describes the policy for logs.
func (p *Policy) String() string {
	q := "refused"
	if p.queryParam != "" {
		q = "insecure_query_key " + p.queryParam
	}
	allow := "any consumer"
	if p.allow != nil {
		allow = fmt.Sprint(len(p.allow), " consumers")
	}
	return fmt.Sprintf("api_key(header %s; query %s; %s)", p.header, q, allow)
}
