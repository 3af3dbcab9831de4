package jwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/policy"
)

// DenyList limits.
const (
	// MaxDenyListEntries bounds a DenyList; expired entries are dropped
	// first when it is full.
	MaxDenyListEntries = 1_000_000
	// MaxJTIBytes bounds a jti on the list.
	MaxJTIBytes = 1024
)

// DenyList is an in-memory set of revoked token IDs (jti), each until a
// time, normally the token's exp: after it the token is refused anyway.
// It is safe for concurrent use; the zero value is an empty list. The gateway keeps one, hands it to every
// jwt and introspection policy (Policy.UseDenyList) and mounts it, as an
// http.Handler, on its admin API.
type DenyList struct {
	// Now is the clock; time.Now if nil. Set it before use.
	Now func() time.Time

	mu sync.RWMutex
	m  map[string]time.Time
}

// DenyEntry is one revoked jti, as the admin API reads and writes it.
type DenyEntry struct {
	JTI   string    `json:"jti"`
	Until time.Time `json:"until"`
}

// NewDenyList returns an empty DenyList.
func NewDenyList() *DenyList { return &DenyList{m: map[string]time.Time{}} }

func (d *DenyList) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Add revokes jti until the given time. Adding a jti again keeps the
// later of the two times.
func (d *DenyList) Add(jti string, until time.Time) error {
	if jti == "" || len(jti) > MaxJTIBytes {
		return fmt.Errorf("jti: want 1 to %d bytes", MaxJTIBytes)
	}
	now := d.now()
	if !until.After(now) {
		return errors.New("until: not in the future")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]time.Time{}
	}
	if old, ok := d.m[jti]; ok {
		if until.After(old) {
			d.m[jti] = until
		}
		return nil
	}
	if len(d.m) >= MaxDenyListEntries {
		for k, u := range d.m {
			if !u.After(now) {
				delete(d.m, k)
			}
		}
		if len(d.m) >= MaxDenyListEntries {
			return fmt.Errorf("the deny-list holds %d live entries", len(d.m))
		}
	}
	d.m[jti] = until
	return nil
}

// Contains reports whether jti is revoked now.
func (d *DenyList) Contains(jti string) bool {
	d.mu.RLock()
	until, ok := d.m[jti]
	d.mu.RUnlock()
	return ok && d.now().Before(until)
}

// Entries lists the live entries, sorted by jti.
func (d *DenyList) Entries() []DenyEntry {
	now := d.now()
	d.mu.RLock()
	out := make([]DenyEntry, 0, len(d.m))
	for j, u := range d.m {
		if now.Before(u) {
			out = append(out, DenyEntry{JTI: j, Until: u.UTC()})
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b DenyEntry) int { return strings.Compare(a.JTI, b.JTI) })
	return out
}

// ServeHTTP is the admin API of the list: GET answers {"entries": [...]};
// POST takes {"jti": "...", "until": RFC 3339 time} and answers 201 with
// the entry. It does no authentication of its own: the gateway mounts it
// on the mTLS-only admin listener.
func (d *DenyList) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		policy.WriteJSON(w, http.StatusOK, map[string]any{"entries": d.Entries()})
	case http.MethodPost:
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		var e struct {
			JTI   string     `json:"jti"`
			Until *time.Time `json:"until"`
		}
		if err := dec.Decode(&e); err != nil || dec.More() {
			policy.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON object {\"jti\": \"...\", \"until\": \"RFC 3339 time\"}"})
			return
		}
		if e.Until == nil {
			policy.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "until: required (RFC 3339), normally the token's exp"})
			return
		}
		if err := d.Add(e.JTI, *e.Until); err != nil {
			policy.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		policy.WriteJSON(w, http.StatusCreated, DenyEntry{JTI: e.JTI, Until: e.Until.UTC()})
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		policy.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	}
}
