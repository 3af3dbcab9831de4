package policy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

var cookieNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCookiesValidation(t *testing.T) {
	no := false
	tests := []struct {
		name string
		cfg  CookiesConfig
		want []string
	}{
		{"same_site", CookiesConfig{SameSite: "Lax"}, []string{`same_site: "Lax" is not one of`}},
		{"max_age", CookiesConfig{MaxAge: -time.Hour}, []string{"max_age: must be at least 1s"}},
		{"sub-second", CookiesConfig{MaxAge: time.Millisecond}, []string{"max_age"}},
		{"bad name", CookiesConfig{HTTPOnlyExempt: []string{"a b"}}, []string{`http_only_exempt[0]: "a b" is not a valid cookie name`}},
		{"__Http-", CookiesConfig{HTTPOnlyExempt: []string{"ok", "__http-sid"}}, []string{"http_only_exempt[1]", "requires HttpOnly"}},
		{"exempt without http_only", CookiesConfig{HTTPOnly: &no, HTTPOnlyExempt: []string{"a"}}, []string{"only meaningful"}},
		{"all at once", CookiesConfig{SameSite: "loose", MaxAge: -1}, []string{"same_site", "max_age"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCookies(tt.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Build(CookiesType, func(any) error { return nil }); err != nil {
		t.Fatalf("an empty block: %v", err)
	}
}

func TestCookiesHarden(t *testing.T) {
	no := false
	def := CookiesConfig{HTTPOnlyExempt: []string{"csrf"}}
	exp := func(d time.Duration) string { return cookieNow.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name string
		cfg  CookiesConfig
		in   string
		want string // "" means dropped
	}{
		{"plain", def, "sid=abc", "sid=abc; HttpOnly; Secure; SameSite=Lax"},
		{"keeps path and domain", def, "sid=abc; Path=/app; Domain=example.com", "sid=abc; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Lax"},
		{"exempt", def, "csrf=t0k; Path=/", "csrf=t0k; Path=/; Secure; SameSite=Lax"},
		{"exempt keeps upstream HttpOnly", def, "csrf=t0k; HttpOnly", "csrf=t0k; HttpOnly; Secure; SameSite=Lax"},
		{"exempt is case-sensitive", def, "CSRF=t0k", "CSRF=t0k; HttpOnly; Secure; SameSite=Lax"},
		{"http_only false keeps upstream's", CookiesConfig{HTTPOnly: &no}, "a=1", "a=1; Secure; SameSite=Lax"},
		{"http_only false never removes", CookiesConfig{HTTPOnly: &no}, "a=1; HttpOnly", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"__Http- always HttpOnly", CookiesConfig{HTTPOnly: &no}, "__Http-a=1", "__Http-a=1; HttpOnly; Secure; SameSite=Lax"},
		{"none raised to lax", def, "a=1; SameSite=None; Secure", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"strict kept under lax", def, "a=1; SameSite=Strict", "a=1; HttpOnly; Secure; SameSite=Strict"},
		{"strict config", CookiesConfig{SameSite: "strict"}, "a=1; SameSite=Lax", "a=1; HttpOnly; Secure; SameSite=Strict"},
		{"none config", CookiesConfig{SameSite: "none"}, "a=1", "a=1; HttpOnly; Secure; SameSite=None"},
		{"none config keeps lax", CookiesConfig{SameSite: "none"}, "a=1; samesite=lax", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"bogus SameSite", def, "a=1; SameSite=Bogus", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"Max-Age capped", def, "a=1; Max-Age=31536000", "a=1; Max-Age=86400; HttpOnly; Secure; SameSite=Lax"},
		{"Max-Age below cap", def, "a=1; Max-Age=600", "a=1; Max-Age=600; HttpOnly; Secure; SameSite=Lax"},
		{"deletion kept", def, "a=; Max-Age=0", "a=; Max-Age=0; HttpOnly; Secure; SameSite=Lax"},
		{"custom cap", CookiesConfig{MaxAge: time.Hour}, "a=1; Max-Age=7200", "a=1; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"},
		{"Expires capped", def, "a=1; Expires=" + exp(365*24*time.Hour), "a=1; Expires=" + exp(24*time.Hour) + "; HttpOnly; Secure; SameSite=Lax"},
		{"Expires within cap", def, "a=1; Expires=" + exp(time.Hour), "a=1; Expires=" + exp(time.Hour) + "; HttpOnly; Secure; SameSite=Lax"},
		{"Expires in the past", def, "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"},
		{"both capped", def, "a=1; Max-Age=999999; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
			"a=1; Expires=" + exp(24*time.Hour) + "; Max-Age=86400; HttpOnly; Secure; SameSite=Lax"},
		{"unparseable Expires ignored", def, "a=1; Expires=tomorrow", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"__Host- forced", def, "__Host-sid=x; Path=/app; Domain=example.com", "__Host-sid=x; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"__host- case-insensitive", def, "__host-sid=x; Domain=example.com", "__host-sid=x; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"__Secure- gets Secure", def, "__Secure-a=1", "__Secure-a=1; HttpOnly; Secure; SameSite=Lax"},
		{"Partitioned kept", def, "a=1; Partitioned", "a=1; HttpOnly; Secure; SameSite=Lax; Partitioned"},
		{"unknown attributes dropped", def, "a=1; Priority=High; Foo", "a=1; HttpOnly; Secure; SameSite=Lax"},
		{"quoted value", def, `a="x y"`, `a="x y"; HttpOnly; Secure; SameSite=Lax`},
		{"no name", def, "=abc", ""},
		{"no equals", def, "garbage", ""},
		{"empty", def, "", ""},
		{"bad name", def, "a b=1", ""},
		{"bad value", def, "a=\"x\\y\"", ""},
		{"bad domain", def, "a=1; Domain=exa mple..com", ""},
		{"bad path", def, "a=1; Path=/\x7f", "a=1; HttpOnly; Secure; SameSite=Lax"}, // net/http drops the attribute
		{"Expires before 1601", def, "a=1; Expires=Mon, 01 Jan 1600 00:00:00 GMT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewCookies(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.harden(tt.in, cookieNow)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("kept %q as %q, want dropped", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("harden(%q)\n got %q (%v)\nwant %q", tt.in, got, err, tt.want)
			}
			if again, err := p.harden(got, cookieNow); err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q (%v)", got, again, err)
			}
		})
	}
}

// TestCookiesResponse: through a real listener, every Set-Cookie of the
// upstream's response is hardened, a bad one dropped and audited once,
// and a response without cookies untouched.
func TestCookiesResponse(t *testing.T) {
	p, err := NewCookies(CookiesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sink := audit.NewMemorySink()
	m := telemetry.New()
	env := &Env{Audit: audit.New(sink), Metrics: m, Now: func() time.Time { return cookieNow }}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/cookies":
			h["Set-Cookie"] = []string{"a=1", "bad cookie", "b=2; Max-Age=99999999; SameSite=None", "=nameless"}
			h["set-cookie"] = []string{"c=3"} // bypassing canonicalisation
			w.WriteHeader(201)
		case "/implicit":
			h.Add("Set-Cookie", "d=4")
			_, _ = io.WriteString(w, "body")
		case "/onlybad":
			h.Add("Set-Cookie", "\x00")
			w.WriteHeader(200)
		case "/early":
			h.Add("Set-Cookie", "e=5")
			w.WriteHeader(http.StatusEarlyHints)
			h.Add("Set-Cookie", "f=6")
			w.WriteHeader(200)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &Exchange{ID: "req-" + r.URL.Path, Route: "r", Remote: r.RemoteAddr, Env: env}
		p.Wrap(upstream).ServeHTTP(w, r.WithContext(WithExchange(r.Context(), x)))
	}))
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := get("/cookies")
	want := []string{"a=1; HttpOnly; Secure; SameSite=Lax", "b=2; Max-Age=86400; HttpOnly; Secure; SameSite=Lax", "c=3; HttpOnly; Secure; SameSite=Lax"}
	if got := resp.Header.Values("Set-Cookie"); resp.StatusCode != 201 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d Set-Cookie:\n%s\nwant:\n%s", resp.StatusCode, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ev := sink.Events()
	if len(ev) != 1 || ev[0].Type != EventSetCookieDropped || ev[0].Reason != ReasonBadSetCookie ||
		ev[0].Fields["dropped"] != 2 || ev[0].RequestID != "req-/cookies" || strings.Contains(ev[0].Fields["error"].(string), "bad cookie") {
		t.Fatalf("events %+v", ev)
	}
	if got := get("/implicit").Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "d=4; HttpOnly; Secure; SameSite=Lax" {
		t.Fatalf("implicit 200: %q", got)
	}
	if resp := get("/onlybad"); resp.Header.Values("Set-Cookie") != nil {
		t.Fatalf("bad cookie passed: %q", resp.Header.Values("Set-Cookie"))
	}
	if n := len(sink.Events()); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	var d struct{ v float64 }
	mfs, _ := m.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == MetricCookiesDropped {
			d.v = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if d.v != 3 {
		t.Errorf("%s = %v, want 3", MetricCookiesDropped, d.v)
	}

	// 103 Early Hints carry hardened cookies too (raw, to see the 1xx).
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(bufio.NewReader(conn))
	for _, line := range strings.Split(string(raw), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "set-cookie:") && !strings.HasSuffix(line, "; HttpOnly; Secure; SameSite=Lax") {
			t.Errorf("unhardened %q in\n%s", line, raw)
		}
	}
	if !strings.Contains(string(raw), "103 Early Hints") || !strings.Contains(string(raw), "f=6; HttpOnly") {
		t.Errorf("response:\n%s", raw)
	}
}

// FuzzSetCookie: harden never panics, and whatever it keeps parses back
// with Secure, a SameSite, no lifetime beyond the cap, and the __Host-
// rules; it is idempotent.
func FuzzSetCookie(f *testing.F) {
	for _, s := range []string{
		"sid=abc", "a=1; Max-Age=99999999", "a=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT", "__Host-a=1; Domain=x.com; Path=/p",
		`a="q v"; SameSite=None`, "a=1; Partitioned", "a=; Max-Age=0", "a=1; Max-Age=-5", "a=1; Expires=Mon, 02-Jan-2006 15:04:05 MST",
		"=", ";;", "a=1; Domain=.example.com; Path=/;;", "__Http-x=1", "a=1; max-age=0999",
	} {
		f.Add(s)
	}
	p, err := NewCookies(CookiesConfig{HTTPOnlyExempt: []string{"a"}})
	if err != nil {
		f.Fatal(err)
	}
	limit := cookieNow.Add(DefaultCookieMaxAge)
	f.Fuzz(func(t *testing.T, in string) {
		out, err := p.harden(in, cookieNow)
		if err != nil {
			return
		}
		if strings.ContainsAny(out, "\r\n\x00") {
			t.Fatalf("%q -> %q: control characters", in, out)
		}
		c, err := http.ParseSetCookie(out)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", in, out, err)
		}
		if !c.Secure || c.SameSite == http.SameSiteDefaultMode {
			t.Fatalf("%q -> %q: Secure %v SameSite %v", in, out, c.Secure, c.SameSite)
		}
		if c.MaxAge > int(DefaultCookieMaxAge/time.Second) || !c.Expires.IsZero() && c.Expires.After(limit) {
			t.Fatalf("%q -> %q: lifetime beyond the cap", in, out)
		}
		if hasPrefixFold(c.Name, "__Host-") && (c.Path != "/" || c.Domain != "") {
			t.Fatalf("%q -> %q: __Host- rules", in, out)
		}
		if c.Name != "a" && !c.HttpOnly {
			t.Fatalf("%q -> %q: HttpOnly missing", in, out)
		}
		if again, err := p.harden(out, cookieNow); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

// BenchmarkCookies is the cost of hardening a typical session cookie.
func BenchmarkCookies(b *testing.B) {
	p, err := NewCookies(CookiesConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.harden("session=3q2+7w==; Path=/; Domain=example.com; Max-Age=31536000; SameSite=None; Secure", cookieNow); err != nil {
			b.Fatal(err)
		}
	}
}
