package apikey

import "io"

// GenerateFrom draws a key's digits from r.
func GenerateFrom(r io.Reader) (Key, error) { return generate(r) }

// KeyOf builds a key from its parts (for a right id with a wrong secret).
func KeyOf(id, secret string) Key { return Key{id: id, secret: secret} }
