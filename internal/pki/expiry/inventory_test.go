package expiry_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// testPKI writes a config whose certificates are in every state:
//
//	server leaf             ok (90 days), under an intermediate expiring in 20 days
//	client CA (listener)    expired
//	client CA (mtls policy) ok
//	admin client CA         not yet valid
//	upstream "billing" CA   ok, pinned; its client certificate expiring (10 days)
//	upstream "ledger"       pinned to a key nowhere in its CA file
type testPKI struct {
	dir, cfgPath string
	now          time.Time
	serials      map[string]string // role → serial (hex)
}

func writeTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	dir := t.TempDir()
	p := &testPKI{dir: dir, cfgPath: filepath.Join(dir, "warden.yaml"), now: now, serials: map[string]string{}}
	days := func(n int) time.Time { return now.Add(time.Duration(n) * expiry.Day) }
	root := pkitest.NewRootCA(t, "Inventory Root", pkitest.Options{NotAfter: days(3650)})
	inter := root.NewIntermediate(t, "Server Intermediate", pkitest.Options{NotAfter: days(20)})
	server := inter.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}, NotAfter: days(19)})
	server.WriteFiles(t, dir, "server")
	p.serials["server"] = server.Cert.SerialNumber.Text(16)
	p.serials["server_intermediate"] = inter.Cert.SerialNumber.Text(16)

	expiredCA := pkitest.NewRootCA(t, "Old Client CA", pkitest.Options{NotBefore: days(-400), NotAfter: days(-1)})
	expiredCA.WriteCert(t, dir, "client-ca.pem")
	p.serials["client_ca"] = expiredCA.Cert.SerialNumber.Text(16)
	routeCA := pkitest.NewRootCA(t, "Partner CA", pkitest.Options{NotAfter: days(365)})
	routeCA.WriteCert(t, dir, "partner-ca.pem")
	p.serials["route_ca"] = routeCA.Cert.SerialNumber.Text(16)
	adminCA := pkitest.NewRootCA(t, "Admin CA", pkitest.Options{NotBefore: days(1), NotAfter: days(365)})
	adminCA.WriteCert(t, dir, "admin-ca.pem")
	p.serials["admin_client_ca"] = adminCA.Cert.SerialNumber.Text(16)

	upCA := pkitest.NewRootCA(t, "Billing CA", pkitest.Options{NotAfter: days(365)})
	upCA.WriteCert(t, dir, "billing-ca.pem")
	p.serials["upstream_ca"] = upCA.Cert.SerialNumber.Text(16)
	client := upCA.Issue(t, pkitest.Options{CommonName: "warden", NotAfter: days(10)})
	client.WriteFiles(t, dir, "billing-client")
	p.serials["upstream_client"] = client.Cert.SerialNumber.Text(16)
	elsewhere := pkitest.SelfSigned(t, pkitest.Options{CommonName: "ledger key"})

	cfg := fmt.Sprintf(`server:
  https:
    address: 127.0.0.1:8443
  admin:
    address: 127.0.0.1:9443
    client_ca_files: [admin-ca.pem]
tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
  client_auth:
    mode: optional
    ca_files: [client-ca.pem]
upstreams:
  - name: billing
    url: https://billing.internal:8443
    ca_file: billing-ca.pem
    client_cert_file: billing-client.pem
    client_key_file: billing-client-key.pem
    pins: [%q]
  - name: ledger
    url: https://ledger.internal:8443
    pins: [%q, %q]
routes:
  - name: partners
    path_prefix: /partners/
    upstream: billing
    policies:
      - type: mtls
        ca_files: [partner-ca.pem]
  - name: more-partners
    path_prefix: /more/
    upstream: billing
    policies:
      - type: mtls
        ca_files: [partner-ca.pem]
  - name: ledger
    path_prefix: /ledger/
    upstream: ledger
`, pki.SPKIPin(upCA.Cert), pki.SPKIPin(elsewhere.Cert), pki.SPKIPin(client.Cert))
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInventory(t *testing.T) {
	p := writeTestPKI(t)
	cfg, _, err := config.Load(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := expiry.Inventory(cfg, p.now, 0)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		use, name, file, state string
		pinned                 bool
	}
	wants := map[string]want{
		p.serials["server"]:              {expiry.UseServer, "", "server.pem", expiry.StateExpiring, false},
		p.serials["server_intermediate"]: {expiry.UseServerIntermediate, "", "server.pem", expiry.StateExpiring, false},
		p.serials["client_ca"]:           {expiry.UseClientCA, "", "client-ca.pem", expiry.StateExpired, false},
		p.serials["route_ca"]:            {expiry.UseClientCA, "route partners", "partner-ca.pem", expiry.StateOK, false},
		p.serials["admin_client_ca"]:     {expiry.UseAdminClientCA, "", "admin-ca.pem", expiry.StateNotYetValid, false},
		p.serials["upstream_ca"]:         {expiry.UseUpstreamCA, "billing", "billing-ca.pem", expiry.StateOK, true},
		p.serials["upstream_client"]:     {expiry.UseUpstreamClient, "billing", "billing-client.pem", expiry.StateExpiring, false},
	}
	if len(rep.Entries) != len(wants) {
		t.Errorf("%d entries, want %d: %+v", len(rep.Entries), len(wants), rep.Entries)
	}
	for _, e := range rep.Entries {
		w, ok := wants[e.Serial]
		if !ok {
			t.Errorf("unexpected entry %+v", e)
			continue
		}
		got := want{e.Use, e.Name, filepath.Base(e.File), e.State, e.Pinned}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", e.Subject, got, w)
		}
		if e.SecondsLeft != int64(e.NotAfter.Sub(p.now)/time.Second) || e.SPKIPin == "" || e.Subject == "" || e.Issuer == "" {
			t.Errorf("%s: incomplete entry %+v", e.Subject, e)
		}
	}
	if w := rep.Worst(); w != expiry.StateExpired {
		t.Errorf("worst state %q, want %q", w, expiry.StateExpired)
	}
	// billing: one pin (on its CA): no backup. ledger: two pins, neither
	// on a local certificate (it has no ca_file).
	got := map[string][]string{}
	for _, f := range rep.Findings {
		got[f.Subject] = append(got[f.Subject], f.Kind)
	}
	if fmt.Sprint(got["upstream billing"]) != fmt.Sprint([]string{expiry.NoBackupPin}) ||
		fmt.Sprint(got["upstream ledger"]) != fmt.Sprint([]string{expiry.PinsMatchNoLocalCert}) || len(got) != 2 {
		t.Errorf("findings %+v", rep.Findings)
	}

	// Thirty days on, more has expired; a wider window makes the
	// partner CA expiring.
	rep, _ = expiry.Inventory(cfg, p.now.Add(30*expiry.Day), 0)
	for _, e := range rep.Entries {
		if e.Serial == p.serials["server"] && (e.State != expiry.StateExpired || e.SecondsLeft >= 0) {
			t.Errorf("server a month on: %s, %d s", e.State, e.SecondsLeft)
		}
	}
	rep, _ = expiry.Inventory(cfg, p.now, 400*expiry.Day)
	for _, e := range rep.Entries {
		if e.Serial == p.serials["route_ca"] && e.State != expiry.StateExpiring {
			t.Errorf("partner CA with a 400d window: %s", e.State)
		}
	}
}

func TestInventoryReportsUnreadableFiles(t *testing.T) {
	p := writeTestPKI(t)
	cfg, _, err := config.Load(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(p.dir, "partner-ca.pem")); err != nil {
		t.Fatal(err)
	}
	rep, err := expiry.Inventory(cfg, p.now, 0)
	if err == nil {
		t.Fatal("no error for a missing bundle")
	}
	if len(rep.Entries) != 6 {
		t.Errorf("the other certificates must still be listed: %d", len(rep.Entries))
	}
}

func TestEntryCertInfoFeedsTheWatcher(t *testing.T) {
	p := writeTestPKI(t)
	cfg, _, err := config.Load(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := expiry.Inventory(cfg, p.now, 0)
	for _, e := range rep.Entries {
		ci := e.CertInfo()
		if ci.Serial != e.Serial || !ci.NotAfter.Equal(e.NotAfter) || ci.Use != e.Use {
			t.Errorf("CertInfo %+v of %+v", ci, e)
		}
	}
}

// TestReportWorst: Worst ranks states (expired > not_yet_valid > expiring >
// ok) and does not depend on the order of the entries.
func TestReportWorst(t *testing.T) {
	report := func(states ...string) expiry.Report {
		var r expiry.Report
		for _, s := range states {
			r.Entries = append(r.Entries, expiry.Entry{State: s})
		}
		return r
	}
	for _, tc := range []struct {
		states []string
		want   string
	}{
		{nil, expiry.StateOK},
		{[]string{expiry.StateOK}, expiry.StateOK},
		{[]string{expiry.StateOK, expiry.StateExpiring}, expiry.StateExpiring},
		{[]string{expiry.StateExpiring, expiry.StateNotYetValid}, expiry.StateNotYetValid},
		{[]string{expiry.StateOK, expiry.StateExpiring, expiry.StateNotYetValid, expiry.StateExpired}, expiry.StateExpired},
		{[]string{expiry.StateNotYetValid, expiry.StateExpired, expiry.StateNotYetValid}, expiry.StateExpired},
	} {
		fwd := tc.states
		rev := make([]string, len(fwd))
		for i, s := range fwd {
			rev[len(fwd)-1-i] = s
		}
		for _, states := range [][]string{fwd, rev} {
			if got := report(states...).Worst(); got != tc.want {
				t.Errorf("Worst(%v) = %q, want %q", states, got, tc.want)
			}
		}
	}
}

// TestInventoryCombinedCertAndKey: a server cert_file that also holds its
// private key (as tls.LoadX509KeyPair allows) is listed, chain included,
// without error; a trust bundle holding a key is still refused.
func TestInventoryCombinedCertAndKey(t *testing.T) {
	p := writeTestPKI(t)
	combine := func(certFile, keyFile string) {
		t.Helper()
		cert, err := os.ReadFile(filepath.Join(p.dir, certFile))
		if err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(filepath.Join(p.dir, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, certFile), append(key, cert...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	combine("server.pem", "server-key.pem")
	cfgText, err := os.ReadFile(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfgText = []byte(strings.Replace(string(cfgText), "key_file: server-key.pem", "key_file: server.pem", 1))
	if err := os.WriteFile(p.cfgPath, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := expiry.Inventory(cfg, p.now, 0)
	if err != nil {
		t.Fatalf("inventory of a combined cert_file: %v", err)
	}
	found := map[string]string{}
	for _, e := range rep.Entries {
		found[e.Serial] = e.Use
	}
	if found[p.serials["server"]] != expiry.UseServer || found[p.serials["server_intermediate"]] != expiry.UseServerIntermediate {
		t.Errorf("server chain not listed: %+v", rep.Entries)
	}

	// A trust bundle stays strict.
	combine("client-ca.pem", "server-key.pem")
	if _, err := expiry.Inventory(cfg, p.now, 0); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("a client CA file holding a key: err %v, want it refused", err)
	}
}
