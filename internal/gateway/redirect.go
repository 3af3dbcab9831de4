package gateway

import (
	"net"
	"net/http"
	"strconv"
)

// redirectHandler answers every plain-HTTP request with a 308 to the same
// host, path and query over HTTPS. It never proxies.
func redirectHandler(httpsPort int, served func(host string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := requestHost(r)
		if host == "" || !validRedirectHost(host) {
			http.Error(w, "HTTPS required", http.StatusBadRequest)
			return
		}
		// Only to names the gateway has a certificate for: a forged Host
		// must not turn the gateway into a redirector to another site.
		if !served(host) {
			http.Error(w, "HTTPS required; this host is not served here", http.StatusMisdirectedRequest)
			return
		}
		if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
			host = "[" + host + "]"
		}
		if httpsPort != 443 {
			host += ":" + strconv.Itoa(httpsPort)
		}
		target := "https://" + host + r.URL.RequestURI()
		w.Header().Set("Connection", "close")
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
	})
}

// validRedirectHost accepts hostnames and IP literals only, so a crafted
// Host header cannot turn the redirect into something else.
func validRedirectHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}
