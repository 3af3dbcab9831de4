// Package policy defines the contract every request policy follows, the
// registry that builds policies from their config blocks, the request-scoped
// Exchange that carries identity between them, and the single deny path.
//
// A policy is a middleware built from its config block by a registry keyed
// by type. It reads the request's identity from the Exchange and adds to it;
// it never reaches into another policy.
package policy

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// Policy wraps the next handler of a route's chain.
type Policy interface {
	Wrap(next http.Handler) http.Handler
}

// FilePath is a file name in a policy's config. The config decoder
// resolves a relative one against the config file's folder, as it does for
// every other file the config names.
type FilePath string

// Decode decodes a policy's config block (without its "type" key) into v,
// strictly: unknown keys and ill-typed values are errors carrying their
// position in the config file.
type Decode func(v any) error

// Factory parses and validates a policy's config block and returns the
// ready policy. It must be pure: no network, no files, no globals, so that
// `warden validate` can call it.
type Factory func(decode Decode) (Policy, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a policy type available to configs. It panics on a
// duplicate name: registration happens in init functions.
func Register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("policy: duplicate type " + typ)
	}
	registry[typ] = f
}

// Build returns the policy of the given type built from its config block.
func Build(typ string, decode Decode) (Policy, error) {
	mu.RLock()
	f, ok := registry[typ]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown policy type %q (known: %v)", typ, Types())
	}
	return f(decode)
}

// Types lists the registered policy types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Chain wraps h in the policies, the first policy outermost.
func Chain(h http.Handler, ps ...Policy) http.Handler {
	for i := len(ps) - 1; i >= 0; i-- {
		h = ps[i].Wrap(h)
	}
	return h
}
