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
	"reflect"
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
	mu          sync.RWMutex
	registry    = map[string]Factory{}
	configTypes = map[string]reflect.Type{}
)

// register makes a policy type available to configs. It panics on a
// duplicate name: registration happens in init functions.
func register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("policy: duplicate type " + typ)
	}
	registry[typ] = f
}

// RegisterConfig registers a policy type whose config block decodes into a
// C, from which build makes the policy. It records C for ConfigTypes.
func RegisterConfig[C any, P Policy](typ string, build func(C) (P, error)) {
	register(typ, func(decode Decode) (Policy, error) {
		var cfg C
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		p, err := build(cfg)
		if err != nil {
			return nil, err // not p: a nil *T in a Policy is not a nil Policy
		}
		return p, nil
	})
	mu.Lock()
	configTypes[typ] = reflect.TypeFor[C]()
	mu.Unlock()
}

// ConfigTypes returns the config type of every policy registered with
// RegisterConfig, by policy type (the docs test walks them).
func ConfigTypes() map[string]reflect.Type {
	mu.RLock()
	defer mu.RUnlock()
	out := make(map[string]reflect.Type, len(configTypes))
	for k, v := range configTypes {
		out[k] = v
	}
	return out
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
