package policy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// WriteJSON writes v as a JSON response with status, as the admin APIs
// answer (API keys, step-up, lock-outs, the jti deny-list, the CA): never
// cached, never sniffed as another type, with its length. v is a value the
// caller built (no channels or functions), so marshalling cannot fail.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
