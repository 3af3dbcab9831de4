package proxy_test

import (
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/proxy"
)

// An upstream reached over verified TLS, pinned to its current key with a
// backup pin for the next one, behind a load balancer whose forwarding
// headers are trusted.
func ExampleNew() {
	pins, err := pki.ParsePins([]string{
		"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", // current key
		"sha256/YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=", // backup key, kept offline
	})
	if err != nil {
		panic(err)
	}
	u, err := proxy.New(proxy.UpstreamConfig{
		Name:                  "orders",
		URL:                   &url.URL{Scheme: "https", Host: "10.0.3.7:8443", Path: "/v1"},
		ServerName:            "orders.internal",
		Pins:                  pins,
		ResponseHeaderTimeout: 10 * time.Second,
		TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")},
	})
	if err != nil {
		panic(err)
	}
	defer u.CloseIdleConnections()
	fmt.Println(u.Name())

	_, err = proxy.New(proxy.UpstreamConfig{Name: "legacy", URL: &url.URL{Scheme: "http", Host: "10.0.3.9"}})
	fmt.Println(err != nil)
	// Output:
	// orders
	// true
}
