package policy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

func init() { RegisterConfig("headers", NewHeaders) }

// HeadersConfig is the config block of the headers policy.
type HeadersConfig struct {
	Request  HeaderOps `yaml:"request"`
	Response HeaderOps `yaml:"response"`
}

// HeaderOps sets and removes headers. Removal happens first.
type HeaderOps struct {
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}

// protected headers are owned by the gateway or by HTTP framing; a policy
// may not set or remove them.
var protected = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Host": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Strict-Transport-Security": true, "X-Forwarded-For": true, "X-Forwarded-Proto": true,
	"X-Forwarded-Host": true, "Forwarded": true, "X-Request-Id": true,
}

type headerOp struct {
	set    [][2]string // canonical name, value; sorted for determinism
	remove []string
}

func compileOps(side string, o HeaderOps) (headerOp, error) {
	var op headerOp
	for _, name := range o.Remove {
		c, err := checkName(side, name)
		if err != nil {
			return op, err
		}
		op.remove = append(op.remove, c)
	}
	for name, val := range o.Set {
		c, err := checkName(side, name)
		if err != nil {
			return op, err
		}
		if !httpguts.ValidHeaderFieldValue(val) {
			return op, fmt.Errorf("%s.set: value of %s has bytes not allowed in a header (control characters or line breaks)", side, name)
		}
		op.set = append(op.set, [2]string{c, val})
	}
	sort.Slice(op.set, func(i, j int) bool { return op.set[i][0] < op.set[j][0] })
	return op, nil
}

func checkName(side, name string) (string, error) {
	if !httpguts.ValidHeaderFieldName(name) {
		return "", fmt.Errorf("%s: %q is not a valid header name", side, name)
	}
	c := textproto.CanonicalMIMEHeaderKey(name)
	if protected[c] {
		return "", fmt.Errorf("%s: header %s is managed by the gateway and cannot be changed by a policy", side, c)
	}
	return c, nil
}

func (op headerOp) apply(h http.Header) {
	for _, n := range op.remove {
		delete(h, n)
	}
	for _, kv := range op.set {
		h[kv[0]] = []string{kv[1]}
	}
}

func (op headerOp) empty() bool { return len(op.set) == 0 && len(op.remove) == 0 }

// Headers sets and removes request and response headers.
type Headers struct {
	req, resp headerOp
}

var _ Policy = (*Headers)(nil)

// NewHeaders builds the headers policy.
func NewHeaders(cfg HeadersConfig) (*Headers, error) {
	req, err := compileOps("request", cfg.Request)
	if err != nil {
		return nil, err
	}
	resp, err := compileOps("response", cfg.Response)
	if err != nil {
		return nil, err
	}
	if req.empty() && resp.empty() {
		return nil, fmt.Errorf("headers policy changes nothing: give request or response set/remove")
	}
	return &Headers{req: req, resp: resp}, nil
}

// Wrap implements Policy.
func (p *Headers) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.req.apply(r.Header)
		if p.resp.empty() {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&headerWriter{ResponseWriter: w, op: p.resp}, r)
	})
}

// headerWriter applies response operations just before the header is sent.
type headerWriter struct {
	http.ResponseWriter
	op      headerOp
	applied bool
}

func (hw *headerWriter) WriteHeader(code int) {
	if !hw.applied && code >= 200 {
		hw.applied = true
		hw.op.apply(hw.ResponseWriter.Header())
	}
	hw.ResponseWriter.WriteHeader(code)
}

func (hw *headerWriter) Write(b []byte) (int, error) {
	if !hw.applied {
		hw.WriteHeader(http.StatusOK)
	}
	return hw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (hw *headerWriter) Unwrap() http.ResponseWriter { return hw.ResponseWriter }

// Flush forwards streaming flushes.
func (hw *headerWriter) Flush() {
	if !hw.applied {
		hw.WriteHeader(http.StatusOK)
	}
	if f, ok := hw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// String describes the policy for logs.
func (p *Headers) String() string {
	return fmt.Sprintf("headers(request set %d remove %s; response set %d remove %s)",
		len(p.req.set), strings.Join(p.req.remove, ","), len(p.resp.set), strings.Join(p.resp.remove, ","))
}
