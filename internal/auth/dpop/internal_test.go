package dpop

import (
	"fmt"
	"testing"
	"time"
)

func TestNormalizeURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://gw.example/a/b", "https://gw.example/a/b"},
		{"HTTPS://GW.EXAMPLE/a/b", "https://gw.example/a/b"},
		{"https://gw.example:443/a", "https://gw.example/a"},
		{"https://gw.example:/a", "https://gw.example/a"},
		{"http://gw.example:80/a", "http://gw.example/a"},
		{"https://gw.example:80/a", "https://gw.example:80/a"},
		{"https://gw.example", "https://gw.example/"},
		{"https://gw.example/a?x=1#f", "https://gw.example/a"},
		{"https://gw.example/%7euser/%2f", "https://gw.example/~user/%2F"},
		{"https://gw.example/a/./b/../c", "https://gw.example/a/c"},
		{"https://gw.example/a/b/..", "https://gw.example/a/"},
		{"https://gw.example/../../x", "https://gw.example/x"},
		{"https://gw.example/a/CaSe", "https://gw.example/a/CaSe"},
		{"https://[::1]:443/a", "https://[::1]/a"},
		{"https://[::443]/a", "https://[::443]/a"},
		{"https://user:pw@gw.example/a", ""},
		{"ftp://gw.example/a", ""},
		{"/a/b", ""},
		{"https:opaque", ""},
		{"https://gw.example/%zz", ""},
		{"https://gw.example/a%2", ""},
	}
	for _, tc := range tests {
		got, ok := normalizeURI(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("normalizeURI(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// The replay cache: a key is refused while remembered; full, it evicts
// the soonest-expiring entry and refuses whatever expires no later, so
// that an evicted key can never pass again.
func TestReplayCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newReplayCache(3)
	k := func(i int) [32]byte { return replayKey("jkt", fmt.Sprint(i)) }
	exp := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	for i, s := range []int{10, 20, 30} {
		if !c.add(k(i), exp(s), now) {
			t.Fatalf("add %d refused", i)
		}
	}
	if c.add(k(1), exp(99), now) {
		t.Fatal("replay admitted")
	}
	if c.add(k(9), exp(5), now) {
		t.Fatal("a key expiring before everything in a full cache admitted")
	}
	if !c.add(k(3), exp(40), now) || c.len() != 3 { // evicts k(0), floor 10
		t.Fatalf("add to a full cache: len %d", c.len())
	}
	if c.add(k(0), exp(10), now) || c.add(k(8), exp(9), now) {
		t.Fatal("a key at or below the floor admitted")
	}
	if !c.add(k(7), exp(50), now) { // evicts k(1), floor 20
		t.Fatal("refused")
	}
	// Time passes: expired entries go, making room without eviction.
	later := now.Add(35 * time.Second)
	if !c.add(k(6), later.Add(60*time.Second), later) || c.len() != 3 {
		t.Fatalf("len %d after expiry", c.len())
	}
	if !c.add(replayKey("other-jkt", "3"), later.Add(60*time.Second), later) {
		t.Fatal("same jti under another key refused")
	}
}

// Nonce keys rotate every lifetime and are forgotten after two.
func TestNonceKeys(t *testing.T) {
	n := newNonces(time.Minute)
	t0 := time.Unix(6000, 0) // an epoch boundary
	a := n.issue(t0)
	if age, ok := n.check(a, t0.Add(30*time.Second)); !ok || age != 30*time.Second {
		t.Fatalf("fresh nonce: %v %v", age, ok)
	}
	b := n.issue(t0.Add(59 * time.Second))
	if _, ok := n.check(b, t0.Add(118*time.Second)); !ok {
		t.Fatal("a nonce from the previous epoch, within its lifetime, refused")
	}
	if _, ok := n.check(b, t0.Add(120*time.Second)); ok {
		t.Fatal("a nonce older than its lifetime accepted")
	}
	c := n.issue(t0.Add(120 * time.Second))
	if _, ok := n.check(c, t0.Add(119*time.Second)); ok {
		t.Fatal("a nonce from the future accepted")
	}
	forged := []byte(c)
	forged[len(forged)-1] ^= 1
	if _, ok := n.check(string(forged), t0.Add(121*time.Second)); ok {
		t.Fatal("forged nonce accepted")
	}
}

// Duplicate member names are refused however they are spelt; colons and
// braces inside strings and nested values do not count.
func TestObjectMembers(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"a":1}`:                       true,
		`{"a":{"b":1,"c":[1,{"d":2}]}}`: true,
		`{"a":"x:y","b":"}:{"}`:         true,
		`{"a":"\":\"","b":"\\"}`:        true,
		` {"a" : 1 , "b":2} `:           true,
		`{"a":1,"a":2}`:                 false,
		`{"typ":"x","t\u0079p":"y"}`:    false,
		`{"a":{"b":1,"b":2}}`:           true, // nested objects are the caller's (jwk is parsed again)
		`null`:                          false,
		`[]`:                            false,
		`{"a":1}x`:                      false,
		`{"a":1}{"b":2}`:                false,
	} {
		if _, err := objectMembers([]byte(in)); (err == nil) != ok {
			t.Errorf("objectMembers(%s): %v, want ok %v", in, err, ok)
		}
	}
}
