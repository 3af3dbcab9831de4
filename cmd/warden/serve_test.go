package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestServeReloadsOnSIGHUPAndStopsOnSIGTERM runs the binary: a SIGHUP
// applies an edited config, and SIGTERM stops it with exit status 0.
func TestServeReloadsOnSIGHUPAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewRootCA(t, "Serve CA", pkitest.Options{})
	ca.WriteCert(t, dir, "ca.pem")
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: loopback}).WriteFiles(t, dir, "server")
	upCert := ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: loopback})
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Version"))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert.TLS()}}
	up.StartTLS()
	defer up.Close()

	// A free port for the gateway (the config needs a fixed address).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := func(version, floor string) string {
		return fmt.Sprintf(`server:
  https:
    address: %s
%s
tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
upstreams:
  - name: up
    url: %s
    ca_file: ca.pem
routes:
  - name: all
    upstream: up
    policies:
      - type: headers
        request:
          set:
            X-Version: %s
audit:
  file: audit.jsonl
`, addr, floor, up.URL, version)
	}
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg("v1", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wardenBin, "serve", "-c", cfgPath)
	for _, kv := range os.Environ() { // GOGC would switch the GC heap floor off
		if !strings.HasPrefix(kv, "GOGC=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	logs := watchLines(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}}
	get := func() (string, error) {
		resp, err := client.Get("https://" + addr + "/x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	logs.waitFor(t, "warden listening")
	logs.waitFor(t, `msg="GC heap floor" floor_bytes=33554432`) // the default
	if v, err := get(); err != nil || v != "v1" {
		t.Fatalf("before reload: %q %v", v, err)
	}

	if err := os.WriteFile(cfgPath, []byte(cfg("v2", "  gc_heap_floor: 64MiB")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, `msg="configuration reloaded" trigger=sighup`)
	logs.waitFor(t, `msg="GC heap floor" floor_bytes=67108864`) // applied by the reload
	if !auditHas(t, filepath.Join(dir, "audit.jsonl"), "config_reloaded", "sighup") {
		t.Error("no config_reloaded audit event for the SIGHUP")
	}
	if v, err := get(); err != nil || v != "v2" {
		t.Fatalf("after SIGHUP: %q %v", v, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, `msg=stopped`) // read all of stderr before Wait closes the pipe
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func auditHas(t *testing.T, path, typ, trigger string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct {
			Type   string         `json:"type"`
			Fields map[string]any `json:"fields"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == typ && ev.Fields["trigger"] == trigger {
			return true
		}
	}
	return false
}

// lines collects a process's standard error and lets a test wait for a
// line, without polling.
type lines struct {
	mu      sync.Mutex
	all     []string
	changed chan struct{}
}

func watchLines(t *testing.T, cmd *exec.Cmd) *lines {
	t.Helper()
	r, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &lines{changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// waitFor blocks until a line containing sub has been written.
func (l *lines) waitFor(t *testing.T, sub string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for i := 0; ; {
		l.mu.Lock()
		for ; i < len(l.all); i++ {
			if strings.Contains(l.all[i], sub) {
				l.mu.Unlock()
				return
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no line containing %q; output:\n%s", sub, l.String())
		}
	}
}
