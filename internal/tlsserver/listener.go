package tlsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

// EventHandshakeFailed is the audit event type of a failed inbound handshake.
const EventHandshakeFailed = "tls_handshake_failed"

// maxDetail bounds attacker-influenced text copied into audit events.
const maxDetail = 256

// ListenerOptions configure NewListener. Zero values give the defaults.
type ListenerOptions struct {
	// Name labels metrics and events.
	Name string
	// MaxConns caps live connections, handshaking or not; 0 means
	// unlimited. Over the cap, connections wait in the kernel's accept
	// queue, unhandshaken.
	MaxConns int
	// HandshakeTimeout bounds each handshake; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// AuditPerSecond caps handshake-failure audit events; 0 means
	// DefaultAuditPerSecond. Suppressed events are counted in the next one.
	AuditPerSecond int
	// Audit receives handshake failures; nil discards them.
	Audit *audit.Logger
	// Metrics counts handshakes and open connections; nil disables them.
	Metrics *telemetry.Metrics
	// Log receives operational messages; nil means slog.Default().
	Log *slog.Logger

	// hooks are test hooks (set by export_test.go); nil in production. A
	// pointer keeps ListenerOptions comparable.
	hooks *listenerHooks
}

// listenerHooks let tests observe the accept loop without sleeping.
type listenerHooks struct {
	// parked is called when the accept loop is at MaxConns and starts
	// waiting for a slot: until one frees, nothing more is accepted.
	parked func()
}

// listener accepts raw connections, handshakes each in its own goroutine,
// and hands completed *tls.Conn to Accept.
type listener struct {
	inner net.Listener
	srv   *Server
	opts  ListenerOptions
	sem   chan struct{} // nil when unlimited
	conns chan *tls.Conn
	limit *eventLimiter
	open  prometheus.Gauge // nil without metrics

	ctx    context.Context // canceled by Close or a fatal accept error
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	mu        sync.Mutex
	err       error // fatal accept error
}

var _ net.Listener = (*listener)(nil)

// NewListener returns a listener whose Accept yields *tls.Conn with a
// completed handshake under srv's current settings. It starts accepting on
// inner at once. Close closes inner and stops pending handshakes.
func NewListener(inner net.Listener, srv *Server, opts ListenerOptions) net.Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.AuditPerSecond <= 0 {
		opts.AuditPerSecond = DefaultAuditPerSecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	l := &listener{
		inner: inner,
		srv:   srv,
		opts:  opts,
		conns: make(chan *tls.Conn),
		limit: newEventLimiter(opts.AuditPerSecond),
	}
	if opts.MaxConns > 0 {
		l.sem = make(chan struct{}, opts.MaxConns)
	}
	if opts.Metrics != nil {
		l.open = opts.Metrics.OpenConns.WithLabelValues(opts.Name)
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection whose handshake has completed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts pending handshakes and waits for their
// goroutines. Connections already returned by Accept stay open.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.inner.Close()
	})
	l.wg.Wait()
	return l.closeErr
}

// Addr returns the inner listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			default: // at the cap: wait for a slot
				if h := l.opts.hooks; h != nil && h.parked != nil {
					h.parked()
				}
				select {
				case l.sem <- struct{}{}:
				case <-l.ctx.Done():
					return
				}
			}
		}
		raw, err := l.inner.Accept()
		if err != nil {
			l.release()
			if l.ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				l.cancel()
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.opts.Log.Warn("tls listener: accept failed, retrying", "listener", l.opts.Name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if l.open != nil {
			l.open.Inc()
		}
		l.wg.Add(1)
		go l.handshake(&conn{Conn: raw, l: l})
	}
}

func (l *listener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

func (l *listener) handshake(c *conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.srv.base)
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		l.failed(c, err, timedOut)
		_ = c.Close()
		return
	}
	st := tc.ConnectionState()
	if c.acmeChallenge { // a tls-alpn-01 validation: never served
		l.count(VersionName(st.Version), CipherName(st.CipherSuite), "acme_challenge")
		_ = c.Close()
		return
	}
	l.count(VersionName(st.Version), CipherName(st.CipherSuite), "ok")
	select {
	case l.conns <- tc:
	case <-l.ctx.Done():
		_ = c.Close() // no close_notify: it could block Close for seconds
	}
}

func (l *listener) count(version, cipher, result string) {
	if l.opts.Metrics != nil {
		l.opts.Metrics.Handshakes.WithLabelValues(version, cipher, result).Inc()
	}
}

// failed counts a failed handshake and, within the audit rate, records it.
func (l *listener) failed(c *conn, err error, timedOut bool) {
	reason := classify(err)
	if timedOut {
		reason = ReasonTimeout
	}
	version := "unknown"
	var offered []string
	if h := c.hello; h != nil {
		var top uint16
		for _, v := range h.SupportedVersions {
			if n := VersionName(v); n != "unknown" { // skips GREASE
				offered = append(offered, n)
				top = max(top, v)
			}
		}
		version = VersionName(top)
	}
	l.count(version, "none", "failed")
	if l.ctx.Err() != nil && !timedOut {
		return // listener closing: not the client's doing
	}
	if reason == ReasonNotTLS {
		replyNotTLS(err)
	}
	ok, suppressed := l.limit.allow()
	if !ok {
		return
	}
	fields := map[string]any{"listener": l.opts.Name}
	if c.hello != nil {
		fields["sni"] = truncate(c.hello.ServerName, maxDetail)
		fields["offered_versions"] = offered
	}
	if suppressed > 0 {
		fields["suppressed"] = suppressed
	}
	remote := c.RemoteAddr().String()
	detail := truncate(err.Error(), maxDetail)
	l.opts.Audit.Emit(audit.Event{
		Type:     EventHandshakeFailed,
		Severity: audit.Warning,
		Remote:   remote,
		Reason:   reason,
		Detail:   detail,
		Fields:   fields,
	})
	l.opts.Log.Debug("tls handshake failed", "listener", l.opts.Name, "remote", remote,
		"reason", reason, "err", detail, "suppressed", suppressed)
}

// replyNotTLS answers plain HTTP sent to the TLS port the way net/http does,
// since net/http no longer sees the failed handshake.
func replyNotTLS(err error) {
	re, ok := errors.AsType[tls.RecordHeaderError](err)
	if !ok || re.Conn == nil {
		return
	}
	switch string(re.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		_ = re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
	}
}

// truncate cuts s to at most n bytes on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// conn is an accepted raw connection. Close releases its MaxConns slot and
// its OpenConns count exactly once.
type conn struct {
	net.Conn
	l         *listener
	closeOnce sync.Once
	hello     *ClientHello // set during the handshake by Server.configForClient
	// acmeChallenge is set during the handshake by Server.configForClient
	// when it answered a tls-alpn-01 validation.
	acmeChallenge bool
}

// Close closes the connection and releases its slot.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.l.release()
		if c.l.open != nil {
			c.l.open.Dec()
		}
	})
	return c.Conn.Close()
}

// ClientHello is what a client offered in its ClientHello, as captured by
// the listener (for fingerprinting such as JA4, and for audit). Slices are
// shared: do not modify them.
type ClientHello struct {
	ServerName        string
	SupportedVersions []uint16
	CipherSuites      []uint16
	SupportedCurves   []tls.CurveID
	SupportedPoints   []uint8
	SignatureSchemes  []tls.SignatureScheme
	SupportedProtos   []string
	Extensions        []uint16 // in wire order, GREASE included
}

func captureHello(chi *tls.ClientHelloInfo) *ClientHello {
	return &ClientHello{
		ServerName:        chi.ServerName,
		SupportedVersions: slices.Clone(chi.SupportedVersions),
		CipherSuites:      slices.Clone(chi.CipherSuites),
		SupportedCurves:   slices.Clone(chi.SupportedCurves),
		SupportedPoints:   slices.Clone(chi.SupportedPoints),
		SignatureSchemes:  slices.Clone(chi.SignatureSchemes),
		SupportedProtos:   slices.Clone(chi.SupportedProtos),
		Extensions:        slices.Clone(chi.Extensions),
	}
}

// ClientHelloOf returns the ClientHello captured for a connection returned
// by a listener from NewListener; ok is false for other connections.
func ClientHelloOf(c *tls.Conn) (h ClientHello, ok bool) {
	if rc, isOurs := c.NetConn().(*conn); isOurs && rc.hello != nil {
		return *rc.hello, true
	}
	return ClientHello{}, false
}
