package stepup_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/store"
)

// receiver is a webhook endpoint on 127.0.0.1 that fails the first
// `fail` deliveries.
type receiver struct {
	mu   sync.Mutex
	got  []stepup.Notification
	hits int
	fail int
	srv  *httptest.Server
}

func newReceiver(t testing.TB, fail int) *receiver {
	rc := &receiver{fail: fail}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.hits++
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		if rc.hits <= rc.fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var n stepup.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Error(err)
		}
		rc.got = append(rc.got, n)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) state() (hits int, got []stepup.Notification) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hits, append([]stepup.Notification(nil), rc.got...)
}

// approvalEnv: the policy with approval on a real listener, its webhook
// receiver, and the admin endpoints on a second listener.
type approvalEnv struct {
	f     *fixture
	p     *stepup.Policy
	rc    *receiver
	c     client
	admin *httptest.Server
}

func newApprovalEnv(t *testing.T, fail int, mut func(*stepup.ApprovalConfig)) *approvalEnv {
	t.Helper()
	f := newFixture(t)
	rc := newReceiver(t, fail)
	ac := stepup.ApprovalConfig{Webhook: rc.srv.URL + "/hook?token=s3cret", Timeout: 5 * time.Minute, MaxBodyBytes: 64}
	if mut != nil {
		mut(&ac)
	}
	p := newPolicy(t, stepup.Config{Methods: []string{"POST"}, Approval: &ac})
	stepup.SetWebhookBackoff(p, 10*time.Millisecond)
	srv := httptest.NewServer(inGateway(f.env, p.Wrap(upstream)))
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	stepup.NewAdmin(f.store, f.env.Audit, f.clock.Now).Mount(mux)
	adm := httptest.NewServer(mux)
	t.Cleanup(adm.Close)
	return &approvalEnv{f: f, p: p, rc: rc, c: client{t, srv}, admin: adm}
}

func (e *approvalEnv) wait(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// ask sends a critical request without a code and returns the approval id.
func (e *approvalEnv) ask(t testing.TB, consumer, body string) string {
	t.Helper()
	r := e.c.do("POST", "/transfer?to=acme", consumer, body, nil)
	id, _ := r.body["approval_id"].(string)
	if r.status != 202 || r.reason() != stepup.ReasonApprovalPending || !stepup.ValidApprovalID(id) ||
		r.header.Get("Warden-Approval") != id || r.header.Get("Retry-After") != "5" || r.body["expires_at"] == nil {
		t.Fatalf("ask: %d %v %s", r.status, r.header, r.raw)
	}
	return id
}

func (e *approvalEnv) decide(t testing.TB, id, verb string) (int, string) {
	t.Helper()
	resp, err := e.admin.Client().Post(e.admin.URL+"/api/stepup/approvals/"+id+"/"+verb, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *approvalEnv) retry(consumer, body, id string) result {
	return e.c.do("POST", "/transfer?to=acme", consumer, body, map[string]string{"Warden-Approval": id})
}

func TestApprovalEndToEnd(t *testing.T) {
	e := newApprovalEnv(t, 0, nil)
	const body = `{"amount":100}`
	id := e.ask(t, "billing", body)
	e.wait(t)
	hits, got := e.rc.state()
	if hits != 1 || len(got) != 1 {
		t.Fatalf("webhook: %d hits %v", hits, got)
	}
	n := got[0]
	if n.Type != stepup.NotificationType || n.ApprovalID != id || n.Consumer != "billing" || n.Method != "POST" ||
		n.Target != "/transfer?to=acme" || n.Route != "payments" || len(n.Digest) != 64 || !n.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("notification %+v", n)
	}
	if len(e.f.events(stepup.EventWebhookDelivered)) != 1 || len(e.f.events(stepup.EventApprovalRequested)) != 1 {
		t.Fatal("audit events of the request and delivery")
	}

	// Still pending: 202 again, same id, no new notification.
	if r := e.retry("billing", body, id); r.status != 202 || r.body["approval_id"] != id {
		t.Fatalf("pending retry: %d %s", r.status, r.raw)
	}
	// Listed as pending.
	resp, err := e.admin.Client().Get(e.admin.URL + "/api/stepup/approvals?state=pending")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Approvals []stepup.ApprovalView }
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Approvals) != 1 || list.Approvals[0].ID != id || list.Approvals[0].State != "pending" {
		t.Fatalf("pending list: %+v", list)
	}

	if code, out := e.decide(t, id, "approve"); code != 200 || !strings.Contains(out, `"state":"approved"`) {
		t.Fatalf("approve: %d %s", code, out)
	}
	if code, out := e.decide(t, id, "deny"); code != 409 || !strings.Contains(out, stepup.ReasonNotPending) {
		t.Fatalf("deny after approve: %d %s", code, out)
	}
	// Another body, another consumer: mismatch; the approval survives.
	if r := e.retry("billing", `{"amount":100000}`, id); r.status != 401 || r.reason() != stepup.ReasonApprovalMismatch {
		t.Fatalf("other body: %d %s", r.status, r.raw)
	}
	if r := e.c.do("POST", "/transfer?to=evil", "billing", body, map[string]string{"Warden-Approval": id}); r.reason() != stepup.ReasonApprovalMismatch {
		t.Fatalf("other query: %s", r.raw)
	}
	if r := e.retry("search", body, id); r.reason() != stepup.ReasonApprovalMismatch {
		t.Fatalf("other consumer: %s", r.raw)
	}
	// The approved request: once, with its body intact.
	r := e.retry("billing", body, id)
	if r.status != 200 || !strings.Contains(r.raw, `"methods":["api_key","approval"]`) ||
		!strings.Contains(r.raw, `"body":"{\"amount\":100}"`) || strings.Contains(r.raw, `"approval":"apr_`) {
		t.Fatalf("approved: %d %s", r.status, r.raw)
	}
	if r := e.retry("billing", body, id); r.status != 401 || r.reason() != stepup.ReasonApprovalUsed {
		t.Fatalf("second use: %d %s", r.status, r.raw)
	}
	// Unknown and malformed ids.
	for _, bad := range []string{"apr_" + strings.Repeat("0", 32), "apr_x", strings.Repeat("a", 300)} {
		if r := e.retry("billing", body, bad); r.status != 401 || r.reason() != stepup.ReasonApprovalUnknown {
			t.Fatalf("%q: %d %s", bad, r.status, r.raw)
		}
	}
	e.wait(t)
	if hits, _ := e.rc.state(); hits != 1 {
		t.Fatalf("webhook hit %d times, want exactly once", hits)
	}
	// Used, as the admin API says.
	resp, err = e.admin.Client().Get(e.admin.URL + "/api/stepup/approvals/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var v stepup.ApprovalView
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v.State != store.ApprovalUsed || v.UsedAt == nil || v.DecidedBy != "admin-api" {
		t.Fatalf("view: %+v", v)
	}
}

func TestApprovalDeniedExpiredLimits(t *testing.T) {
	e := newApprovalEnv(t, 0, func(c *stepup.ApprovalConfig) { c.MaxPending = 3 })
	// Denied.
	id := e.ask(t, "billing", "a")
	if code, out := e.decide(t, id, "deny"); code != 200 || !strings.Contains(out, `"state":"denied"`) {
		t.Fatalf("deny: %d %s", code, out)
	}
	if r := e.retry("billing", "a", id); r.status != 403 || r.reason() != stepup.ReasonApprovalDenied {
		t.Fatalf("denied: %d %s", r.status, r.raw)
	}
	if code, _ := e.decide(t, id, "approve"); code != 409 {
		t.Fatalf("approve after deny: %d", code)
	}
	// Approved, then expired before use.
	id2 := e.ask(t, "billing", "b")
	if code, _ := e.decide(t, id2, "approve"); code != 200 {
		t.Fatal(code)
	}
	e.f.clock.Advance(5 * time.Minute)
	if r := e.retry("billing", "b", id2); r.status != 401 || r.reason() != stepup.ReasonApprovalExpired {
		t.Fatalf("expired: %d %s", r.status, r.raw)
	}
	// Pending, expired before a decision.
	id3 := e.ask(t, "billing", "c")
	e.f.clock.Advance(5*time.Minute + time.Second)
	if code, out := e.decide(t, id3, "approve"); code != 409 || !strings.Contains(out, stepup.ReasonApprovalExpired) {
		t.Fatalf("approve expired: %d %s", code, out)
	}
	if r := e.retry("billing", "c", id3); r.reason() != stepup.ReasonApprovalExpired {
		t.Fatalf("expired pending: %s", r.raw)
	}
	// Unknown id at the admin API.
	if code, _ := e.decide(t, "apr_"+strings.Repeat("1", 32), "approve"); code != 404 {
		t.Fatalf("unknown: %d", code)
	}
	// At most 3 pending per consumer; expired ones do not count.
	for range 3 {
		e.ask(t, "billing", "d")
	}
	r := e.c.do("POST", "/transfer?to=acme", "billing", "d", nil)
	if r.status != 429 || r.reason() != stepup.ReasonTooManyPending || r.header.Get("Retry-After") == "" {
		t.Fatalf("limit: %d %s", r.status, r.raw)
	}
	e.ask(t, "search", "d") // another consumer is not affected
	// A body over max_body_bytes cannot be approved.
	if r := e.c.do("POST", "/transfer", "billing", strings.Repeat("x", 65), nil); r.status != 413 || r.reason() != stepup.ReasonBodyTooLarge {
		t.Fatalf("large body: %d %s", r.status, r.raw)
	}
	e.wait(t)
	if len(e.f.events(stepup.EventApprovalDecided)) < 4 {
		t.Error("decisions not audited")
	}
}

// A failed delivery is retried, and audited.
func TestWebhookRetried(t *testing.T) {
	e := newApprovalEnv(t, 1, nil)
	id := e.ask(t, "billing", "")
	e.wait(t)
	hits, got := e.rc.state()
	if hits != 2 || len(got) != 1 || got[0].ApprovalID != id {
		t.Fatalf("%d hits, %v", hits, got)
	}
	fails := e.f.events(stepup.EventWebhookFailed)
	if len(fails) != 1 || fails[0].Fields["final"] != false || strings.Contains(fails[0].Detail, "s3cret") {
		t.Fatalf("failure events: %+v", fails)
	}
	if d := e.f.events(stepup.EventWebhookDelivered); len(d) != 1 || d[0].Fields["attempts"] != 2 {
		t.Fatalf("delivered: %+v", d)
	}
}

// A webhook that never answers well: bounded attempts, each audited, the
// last one critical; the approval still works.
func TestWebhookGivesUp(t *testing.T) {
	e := newApprovalEnv(t, 100, nil)
	id := e.ask(t, "billing", "")
	e.wait(t)
	if hits, _ := e.rc.state(); hits != 3 {
		t.Fatalf("%d attempts, want 3", hits)
	}
	fails := e.f.events(stepup.EventWebhookFailed)
	if len(fails) != 3 || fails[2].Severity != "critical" || fails[2].Fields["final"] != true {
		t.Fatalf("%+v", fails)
	}
	if code, _ := e.decide(t, id, "approve"); code != 200 {
		t.Fatal(code)
	}
	if r := e.retry("billing", "", id); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// Over TLS: the webhook's certificate is verified.
func TestWebhookTLS(t *testing.T) {
	f := newFixture(t)
	var hits int
	var mu sync.Mutex
	tsrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer tsrv.Close()
	p := newPolicy(t, stepup.Config{Approval: &stepup.ApprovalConfig{Webhook: tsrv.URL}})
	stepup.SetWebhookBackoff(p, time.Millisecond)
	srv := httptest.NewServer(inGateway(f.env, p.Wrap(upstream)))
	defer srv.Close()
	c := client{t, srv}
	// Untrusted certificate: refused, 3 attempts audited.
	if r := c.do("POST", "/", "billing", "", nil); r.status != 202 {
		t.Fatal(r.raw)
	}
	ctx := context.Background()
	_ = p.Wait(ctx)
	if len(f.events(stepup.EventWebhookFailed)) != 3 {
		t.Fatalf("untrusted webhook: %v", f.events(stepup.EventWebhookFailed))
	}
	mu.Lock()
	if hits != 0 {
		t.Fatal("request reached an untrusted webhook")
	}
	mu.Unlock()
	stepup.SetWebhookClient(p, tsrv.Client())
	if r := c.do("POST", "/", "billing", "", nil); r.status != 202 {
		t.Fatal(r.raw)
	}
	_ = p.Wait(ctx)
	if len(f.events(stepup.EventWebhookDelivered)) != 1 {
		t.Fatal("trusted webhook not delivered")
	}
}
