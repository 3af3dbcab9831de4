package revocation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// hasHTTP reports whether any of urls is an http or https URL; only those
// are followed (an LDAP distribution point, say, is not a source).
func hasHTTP(urls []string) bool {
	for _, u := range urls {
		if isHTTP(u) {
			return true
		}
	}
	return false
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// fetch GETs url (or POSTs body to it when body is non-nil) and returns the
// response body, at most limit bytes. Failures are *UnavailableError with
// the given reasons.
func (e *env) fetch(ctx context.Context, url string, body []byte, limit int64, unreachable, tooLarge string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		method, rd = http.MethodPost, bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, unavailable(unreachable, "%s: %w", url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/ocsp-request")
		req.Header.Set("Accept", "application/ocsp-response")
	}
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, unavailable(unreachable, "%w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable(unreachable, "%s %s: HTTP status %d", method, url, resp.StatusCode)
	}
	if resp.ContentLength > limit {
		return nil, unavailable(tooLarge, "%s: %d bytes, limit %d", url, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, unavailable(unreachable, "%s %s: read body: %w", method, url, err)
	}
	if int64(len(data)) > limit {
		return nil, unavailable(tooLarge, "%s: more than %d bytes", url, limit)
	}
	return data, nil
}

// flight runs one call per key at a time: callers that arrive while a call
// for their key runs wait for it and share its result (singleflight).
type flight[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
	// onWait, a test hook, is called (without mu held) each time a caller
	// starts waiting on a running call, with the key and the number now
	// waiting on it. Set it before the flight is used.
	onWait func(key string, waiters int)
}

type call[T any] struct {
	done    chan struct{}
	val     T
	waiters int // callers sharing the result, for tests
}

// do returns fn's result for key. fn runs on a context that callers'
// cancellation does not end (a fetch shared by many must not fail because
// its first caller gave up); a caller whose ctx ends stops waiting and gets
// ctx's error.
func (f *flight[T]) do(ctx context.Context, key string, fn func(context.Context) T) (T, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]*call[T])
	}
	if c, ok := f.calls[key]; ok {
		c.waiters++
		waiters := c.waiters
		f.mu.Unlock()
		if f.onWait != nil {
			f.onWait(key, waiters)
		}
		select {
		case <-c.done:
			return c.val, nil
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("waiting for fetch: %w", ctx.Err())
		}
	}
	c := &call[T]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.val = fn(context.WithoutCancel(ctx))
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.val, nil
}

// waiting returns how many callers wait on the call running for key.
func (f *flight[T]) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c.waiters
	}
	return -1
}
