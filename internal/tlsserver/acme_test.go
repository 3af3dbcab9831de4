package tlsserver_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/tlsserver"
)

// TestACMEChallenge checks the tls-alpn-01 hook on a real listener: it is
// consulted only for a ClientHello offering exactly acme-tls/1, its
// certificate is served with acme-tls/1 negotiated, the connection is then
// closed by the server and never returned by Accept, and a refusal by the
// hook (no pending challenge) fails the handshake.
func TestACMEChallenge(t *testing.T) {
	p := newPKI(t)
	chalCert := p.ecdsaB.TLS() // stands in for the challenge certificate
	tests := []struct {
		name      string
		hook      bool  // install the hook
		hookErr   error // what the hook returns
		protos    []string
		wantErr   string // "" means the handshake succeeds
		wantCalls int64
		wantProto string
		wantChal  bool // the challenge certificate is served and the conn closed
	}{
		{name: "challenge answered", hook: true, protos: []string{"acme-tls/1"},
			wantCalls: 1, wantProto: "acme-tls/1", wantChal: true},
		{name: "no pending challenge refused", hook: true, hookErr: errors.New("no challenge"),
			protos: []string{"acme-tls/1"}, wantErr: "internal error", wantCalls: 1},
		{name: "acme-tls/1 among others is a normal handshake", hook: true,
			protos: []string{"acme-tls/1", "http/1.1"}, wantProto: "http/1.1"},
		{name: "no hook: acme-tls/1 refused", protos: []string{"acme-tls/1"},
			wantErr: "no application protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			s := tlsserver.Settings{Certificates: certs(p.ecdsaA)}
			if tt.hook {
				s.ACMEChallenge = func(chi *tls.ClientHelloInfo) (*tls.Certificate, error) {
					calls.Add(1)
					if chi.ServerName != "b.example" {
						return nil, errors.New("unexpected server name " + chi.ServerName)
					}
					return &chalCert, tt.hookErr
				}
			}
			h := start(t, s, tlsserver.ListenerOptions{})
			cfg := &tls.Config{RootCAs: p.root.Pool(), ServerName: "b.example", NextProtos: tt.protos}
			if !tt.wantChal && tt.wantErr == "" {
				cfg.ServerName = "a.example"
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.addr, cfg)
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("hook called %d times, want %d", got, tt.wantCalls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("handshake error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.NegotiatedProtocol != tt.wantProto {
				t.Errorf("negotiated %q, want %q", st.NegotiatedProtocol, tt.wantProto)
			}
			served := st.PeerCertificates[0].SerialNumber.Cmp(p.ecdsaB.Cert.SerialNumber) == 0
			if served != tt.wantChal {
				t.Errorf("challenge certificate served = %v, want %v", served, tt.wantChal)
			}
			if !tt.wantChal {
				if err := roundTrip(c); err != nil {
					t.Fatalf("normal connection not served: %v", err)
				}
				return
			}
			// The server closes a validation connection right after the
			// handshake; once the client sees that, the listener has
			// already decided not to hand it to Accept.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("read after validation handshake = %v, want EOF (closed by the server)", err)
			}
			if n := len(h.accepted); n != 0 {
				t.Fatalf("Accept returned %d connections, want 0", n)
			}
			if n := counter(t, h.metrics, "warden_tls_handshakes_total", map[string]string{"result": "acme_challenge"}); n != 1 {
				t.Fatalf("acme_challenge handshakes = %v, want 1", n)
			}
		})
	}
}

// TestACMESettings: with the hook, a listener may start without a
// certificate (to obtain its first one); acme-tls/1 cannot be configured
// as an application protocol.
func TestACMESettings(t *testing.T) {
	hook := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("none") }
	tests := []struct {
		name    string
		s       tlsserver.Settings
		wantErr string
	}{
		{name: "hook without certificates", s: tlsserver.Settings{ACMEChallenge: hook}},
		{name: "no hook, no certificates", s: tlsserver.Settings{}, wantErr: "no certificates"},
		{name: "acme-tls/1 as next proto", s: tlsserver.Settings{ACMEChallenge: hook, NextProtos: []string{"h2", "acme-tls/1"}},
			wantErr: "reserved for ACME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
