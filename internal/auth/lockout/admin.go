package lockout

import (
	"encoding/json"
	"net/http"

	"github.com/wardengw/warden/internal/policy"
)

// Admin API paths, mounted by Mount.
const (
	// AdminListPath answers GET with {"lockouts": [Lock...]}.
	AdminListPath = "/api/lockout"
	// AdminUnlockPath takes POST {"ip": "..."} or {"consumer": "..."} and
	// answers 200 {"unlocked": {"kind", "key"}} or 404 when the key is
	// not locked out; 400 for anything else.
	AdminUnlockPath = "/api/lockout/unlock"
)

// Mounter is what Mount needs of the admin server: (*admin.Server).Handle.
type Mounter interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers the Guard's admin API on the admin server:
// GET /api/lockout and POST /api/lockout/unlock.
func (g *Guard) Mount(m Mounter) {
	h := g.AdminHandler()
	m.Handle("GET "+AdminListPath, h)
	m.Handle("POST "+AdminUnlockPath, h)
}

// AdminHandler returns the Guard's admin API (see AdminListPath and
// AdminUnlockPath). It does no authentication of its own: mount it only
// on the mTLS-only admin listener, which also audits every call. An
// unlock records a lockout_released event naming the caller's address.
func (g *Guard) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == AdminListPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			locks := g.Locks()
			if locks == nil {
				locks = []Lock{}
			}
			policy.WriteJSON(w, http.StatusOK, map[string]any{"lockouts": locks})
		case r.URL.Path == AdminUnlockPath && r.Method == http.MethodPost:
			g.serveUnlock(w, r)
		case r.URL.Path == AdminListPath || r.URL.Path == AdminUnlockPath:
			allow := "GET, HEAD"
			if r.URL.Path == AdminUnlockPath {
				allow = "POST"
			}
			w.Header().Set("Allow", allow)
			policy.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		default:
			policy.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		}
	})
}

func (g *Guard) serveUnlock(w http.ResponseWriter, r *http.Request) {
	const usage = `want a JSON object {"ip": "address or IPv6 network"} or {"consumer": "name"}`
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	var req struct {
		IP       *string `json:"ip"`
		Consumer *string `json:"consumer"`
	}
	if err := dec.Decode(&req); err != nil || dec.More() || (req.IP == nil) == (req.Consumer == nil) {
		policy.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": usage})
		return
	}
	kind, key := KindConsumer, ""
	if req.IP != nil {
		kind, key = KindIP, *req.IP
	} else {
		key = *req.Consumer
	}
	_, norm, ok := g.normalize(kind, key)
	if !ok {
		policy.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": kind + ": not a valid key; " + usage})
		return
	}
	if !g.unlock(kind, key, r.RemoteAddr) {
		policy.WriteJSON(w, http.StatusNotFound, map[string]any{"error": "no current lock-out", "kind": kind, "key": norm})
		return
	}
	policy.WriteJSON(w, http.StatusOK, map[string]any{"unlocked": map[string]string{"kind": kind, "key": norm}})
}
