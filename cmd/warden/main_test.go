package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/testkit"
)

// These are black-box tests of the built binary.

var wardenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wardenBin = filepath.Join(dir, "warden")
	out, err := exec.Command("go", "build", "-o", wardenBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build warden: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runWarden(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(wardenBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewRootCA(t, "CA", pkitest.Options{})
	ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}}).WriteFiles(t, dir, "server")
	good := `tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
upstreams:
  - name: api
    url: https://127.0.0.1:9
    pins: ["sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
routes:
  - name: api
    upstream: api
`
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("good.yaml", good)
	out, errOut, code := runWarden(t, "validate", "-c", p)
	if code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("valid config: exit %d, %s %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "no backup pin") {
		t.Errorf("want the backup-pin warning, got %q", errOut)
	}
	bad := strings.Replace(good, "upstream: api\n", "upstream: api\n    insecure_plaintext_upstrem: true\n", 1)
	bad = strings.Replace(bad, "https://127.0.0.1:9", "http://127.0.0.1:9", 1)
	p = write("bad.yaml", bad)
	_, errOut, code = runWarden(t, "validate", "-c", p)
	if code == 0 {
		t.Fatal("invalid config: exit 0")
	}
	if !strings.Contains(errOut, p+`:12:5: routes[0].insecure_plaintext_upstrem: unknown key`) {
		t.Errorf("error lacks file:line:column:\n%s", errOut)
	}
	// Decoding errors are reported first; fix the typo to see the rest.
	p = write("bad2.yaml", strings.Replace(bad, "    insecure_plaintext_upstrem: true\n", "", 1))
	_, errOut, _ = runWarden(t, "validate", "-c", p)
	if !strings.Contains(errOut, "routes[0].upstream") || !strings.Contains(errOut, "TLS settings (pins") {
		t.Errorf("want both errors:\n%s", errOut)
	}
}

func TestPin(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewRootCA(t, "Pin CA", pkitest.Options{})
	inter := ca.NewIntermediate(t, "Pin Intermediate", pkitest.Options{})
	leaf := inter.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	certPath, keyPath := leaf.WriteFiles(t, dir, "leaf")
	caPath := ca.WriteCert(t, dir, "ca.pem")
	// A cert_file that also holds its key, as many deployments keep them:
	// the key is skipped, never parsed or printed.
	certPEM, _ := os.ReadFile(certPath)
	keyPEM, _ := os.ReadFile(keyPath)
	combined := filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, file := range []string{certPath, combined} {
		out, errOut, code := runWarden(t, "pin", file)
		if code != 0 {
			t.Fatalf("pin %s: %d %s", filepath.Base(file), code, errOut)
		}
		for _, c := range []*x509.Certificate{leaf.Cert, inter.Cert} {
			if !strings.Contains(out, "  - "+pki.SPKIPin(c).String()) {
				t.Errorf("%s: output lacks the pin of %s:\n%s", filepath.Base(file), c.Subject.CommonName, out)
			}
		}
		if n := strings.Count(out, "sha256/"); n != 2 {
			t.Errorf("%s: %d pins printed, want 2:\n%s", filepath.Base(file), n, out)
		}
	}
	// Any other block is still refused.
	odd := filepath.Join(dir, "odd.pem")
	if err := os.WriteFile(odd, append(append([]byte{}, certPEM...), "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runWarden(t, "pin", odd); code == 0 || !strings.Contains(errOut, "CERTIFICATE REQUEST") {
		t.Errorf("a file with a CSR block: exit %d, %s", code, errOut)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, ln, func(c net.Conn) {
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	})
	out, errOut, code := runWarden(t, "pin", ln.Addr().String(), "--ca", caPath)
	if code != 0 {
		t.Fatalf("pin live: %d %s", code, errOut)
	}
	for _, c := range []*x509.Certificate{leaf.Cert, inter.Cert, ca.Cert} {
		if !strings.Contains(out, "  - "+pki.SPKIPin(c).String()) {
			t.Errorf("live output lacks the pin of %s:\n%s", c.Subject.CommonName, out)
		}
	}
	// Without the CA, the endpoint is not trusted: no pins are printed.
	out, _, code = runWarden(t, "pin", ln.Addr().String())
	if code == 0 || strings.Contains(out, "sha256/") {
		t.Fatalf("unverified endpoint: exit %d, printed %q", code, out)
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(wardenBin, "demo", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Read the printed instructions up to the metrics command.
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "/metrics") {
			break
		}
	}
	deadline.Stop()
	go io.Copy(io.Discard, stdout)
	text := printed.String()
	m := regexp.MustCompile(`https://localhost:(\d+)/public/hello`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no curl command printed:\n%s\nstderr:\n%s", text, stderr.String())
	}
	for _, f := range []string{"ca.pem", "client.pem", "client-key.pem", "warden.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo folder lacks %s", f)
		}
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, withCert bool) (*http.Response, map[string]any) {
		cfg := &tls.Config{RootCAs: pool}
		if withCert {
			cfg.Certificates = []tls.Certificate{clientCert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		resp, err := c.Get("https://localhost:" + m[1] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, body := get("/public/hello", false); resp.StatusCode != 200 || body["path"] != "/public/hello" {
		t.Errorf("public: %d %v", resp.StatusCode, body)
	}
	if resp, body := get("/secure/hello", true); resp.StatusCode != 200 || body["path"] != "/secure/hello" {
		t.Errorf("secure with client cert: %d %v", resp.StatusCode, body)
	}
	if resp, body := get("/secure/hello", false); resp.StatusCode != 401 || body["reason"] != "client_certificate_required" {
		t.Errorf("secure without client cert: %d %v", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo did not stop cleanly: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop on SIGINT")
	}

	// A second run reuses the state folder: same CA.
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if _, err := pki.LoadOrCreateDevPKI(dir); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(ca1, ca2) {
		t.Error("the demo CA was not reused")
	}
}
