package gateway

import (
	"net/http"
)

// adminHandler serves the admin listener: Prometheus metrics and a health
// check. It is its own mux; nothing is registered on the default one.
func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", g.rt.Load().hsts)
		mux.ServeHTTP(w, r)
	})
}
