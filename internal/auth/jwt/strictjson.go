package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// errDuplicate marks a JSON object that repeats a member name. RFC 7515
// section 5.2 and RFC 7519 section 7.2 let a recipient refuse such input,
// and it must: JSON parsers disagree on which duplicate wins, so a token
// could mean one thing to Warden and another to the upstream.
var errDuplicate = errors.New("duplicate member name")

// decodeObject decodes a JSON object strictly: duplicate member names
// anywhere in it, trailing data and nesting deeper than maxJSONDepth are
// errors. Numbers stay json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	obj, err := decodeMembers(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return obj, nil
}

func decodeMembers(dec *json.Decoder, depth int) (map[string]any, error) {
	obj := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("object member name is not a string")
		}
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("%w %q", errDuplicate, truncate(name))
		}
		v, err := decodeValue(dec, depth)
		if err != nil {
			return nil, err
		}
		obj[name] = v
	}
	_, err := dec.Token() // '}'
	return obj, err
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return tok, nil
	}
	if depth >= maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	if d == '{' {
		return decodeMembers(dec, depth+1)
	}
	arr := []any{}
	for dec.More() {
		v, err := decodeValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	_, err = dec.Token() // ']'
	return arr, err
}

func truncate(s string) string {
	if len(s) <= maxAuditText {
		return s
	}
	return s[:maxAuditText] + "…"
}
