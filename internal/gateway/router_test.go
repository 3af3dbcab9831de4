package gateway

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

// TestRouterNoFallThroughOnMethod: a method the most specific route does
// not accept gets 405; it never falls through to a less specific route
// that lacks that route's policies.
func TestRouterNoFallThroughOnMethod(t *testing.T) {
	admin := &route{name: "admin", prefix: "/admin/", methods: map[string]bool{"GET": true}}
	adminWrite := &route{name: "admin-write", prefix: "/admin/", methods: map[string]bool{"PUT": true}}
	all := &route{name: "all", prefix: "/"}
	rt := newRouter([]*route{all, admin, adminWrite})
	tests := []struct {
		method, path, want string
		wrongMethod        bool
	}{
		{"GET", "/admin/x", "admin", false},
		{"PUT", "/admin/x", "admin-write", false},
		{"POST", "/admin/x", "", true},
		{"POST", "/other", "all", false},
	}
	for _, tt := range tests {
		ro, wrong := rt.match(httptest.NewRequest(tt.method, tt.path, nil))
		got := ""
		if ro != nil {
			got = ro.name
		}
		if got != tt.want || wrong != tt.wrongMethod {
			t.Errorf("%s %s: route %q wrongMethod %v, want %q %v", tt.method, tt.path, got, wrong, tt.want, tt.wrongMethod)
		}
	}
}

// TestRouterGroupsEqualPrefixes: routes of the same specificity but
// different prefixes are not interleaved, so a method one of a prefix's
// routes accepts is never answered 405.
func TestRouterGroupsEqualPrefixes(t *testing.T) {
	abGet := &route{name: "ab-get", prefix: "/ab", methods: map[string]bool{"GET": true}}
	cdGet := &route{name: "cd-get", prefix: "/cd", methods: map[string]bool{"GET": true}}
	abPost := &route{name: "ab-post", prefix: "/ab", methods: map[string]bool{"POST": true}}
	rt := newRouter([]*route{abGet, cdGet, abPost})
	for _, tt := range []struct{ method, path, want string }{
		{"POST", "/ab/1", "ab-post"}, {"GET", "/ab/1", "ab-get"}, {"GET", "/cd/1", "cd-get"},
	} {
		ro, wrong := rt.match(httptest.NewRequest(tt.method, tt.path, nil))
		if ro == nil || ro.name != tt.want || wrong {
			t.Errorf("%s %s: %v (405 %v), want %s", tt.method, tt.path, ro, wrong, tt.want)
		}
	}
}

// TestRouterPrefixBySegment: a prefix without a trailing slash matches
// whole path segments only.
func TestRouterPrefixBySegment(t *testing.T) {
	api := &route{name: "api", prefix: "/api"}
	docs := &route{name: "docs", prefix: "/docs/"}
	all := &route{name: "all", prefix: "/"}
	rt := newRouter([]*route{all, api, docs})
	for path, want := range map[string]string{
		"/api": "api", "/api/": "api", "/api/v1": "api", "/apiary": "all", "/api.json": "all",
		"/docs/": "docs", "/docs/x": "docs", "/docs": "all", "/": "all",
	} {
		ro, _ := rt.match(httptest.NewRequest("GET", path, nil))
		if ro == nil || ro.name != want {
			t.Errorf("%s: matched %v, want %s", path, ro, want)
		}
	}
}

// TestConsumerLabelBounded: past maxConsumerLabels distinct consumers, the
// variant metric's label is "other".
func TestConsumerLabelBounded(t *testing.T) {
	g := &Gateway{}
	for i := range maxConsumerLabels {
		if got := g.consumerLabel(fmt.Sprint("c", i)); got != fmt.Sprint("c", i) {
			t.Fatalf("consumer %d labelled %q", i, got)
		}
	}
	if got := g.consumerLabel("one-too-many"); got != "other" {
		t.Fatalf("label %q past the bound", got)
	}
	if got := g.consumerLabel("c7"); got != "c7" {
		t.Fatalf("a known consumer is labelled %q", got)
	}
}
