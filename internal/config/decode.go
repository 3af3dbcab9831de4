package config

import (
	"encoding"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/policy"
)

// Pos is a position in a config file.
type Pos struct {
	Line, Column int
}

// Error is one problem found in a config file, with its position.
type Error struct {
	File string
	Pos  Pos
	Path string // dotted key path, e.g. routes[1].upstream
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// decoder decodes a yaml.Node tree into Go values strictly: unknown keys,
// duplicate keys and ill-typed values are errors, all collected in one pass,
// each with its position.
type decoder struct {
	file string
	errs []error
	pos  map[string]Pos // key path -> position of its value
	// work counts decoded nodes and depth the nesting, so that a hostile
	// file (alias bombs, deep nesting) is refused instead of exhausting us.
	work, depth int
}

const (
	maxWork  = 200_000
	maxDepth = 64
)

// unmarshaler lets a type decode itself from a node.
type unmarshaler interface {
	decodeYAML(d *decoder, n *yaml.Node, path string)
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	timeType          = reflect.TypeFor[time.Time]()
	filePathType      = reflect.TypeFor[policy.FilePath]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
	unmarshalerType   = reflect.TypeFor[unmarshaler]()
)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Pos = Pos{n.Line, n.Column}
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.work++
	d.depth++
	defer func() { d.depth-- }()
	if d.work > maxWork || d.depth > maxDepth {
		if d.work == maxWork+1 || d.depth == maxDepth+1 {
			d.errorf(n, path, "the file is too large or too deeply nested (aliases included)")
		}
		return
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	}
	if path != "" {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		v.Addr().Interface().(unmarshaler).decodeYAML(d, n, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.Zero(v.Type())) // explicit null: the default applies
		return
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	if v.Type() == filePathType {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" || n.Value == "" {
			d.errorf(n, path, "expected a file name, found %s", kindName(n))
			return
		}
		p := n.Value
		if !filepath.IsAbs(p) && d.file != "" {
			p = filepath.Join(filepath.Dir(d.file), p)
		}
		v.SetString(p)
		return
	}
	if v.Type() == timeType {
		d.decodeTime(n, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, found %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, found %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "keys must be plain values")
				continue
			}
			if seen[k.Value] {
				d.errorf(k, path+"."+k.Value, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, path+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint16, reflect.Float64:
		d.decodeScalar(n, v, path)
	default:
		d.errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a single value, found %s", kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		// Only plain strings: a YAML "yes" or 12 must be quoted to be a string
		// where a typo could otherwise hide (e.g. a number for a host).
		if n.Tag != "!!str" {
			d.errorf(n, path, "expected a string, found %s %q (quote it)", strings.TrimPrefix(n.Tag, "!!"), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.errorf(n, path, "expected true or false, found %q", n.Value)
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Uint16:
		if n.Tag != "!!int" {
			d.errorf(n, path, "expected an integer, found %q", n.Value)
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || v.OverflowInt(i) && v.Kind() != reflect.Uint16 || v.Kind() == reflect.Uint16 && (i < 0 || i > 65535) {
			d.errorf(n, path, "integer %q out of range", n.Value)
			return
		}
		if v.Kind() == reflect.Uint16 {
			v.SetUint(uint64(i))
		} else {
			v.SetInt(i)
		}
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") {
			d.errorf(n, path, "expected a number, found %q", n.Value)
			return
		}
		v.SetFloat(f)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a duration such as 30s or 5m, found %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, path, "expected a duration such as 30s, 5m or 24h, found %q", n.Value)
		return
	}
	if dur < 0 {
		d.errorf(n, path, "duration %q is negative", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

// decodeTime accepts an RFC 3339 time or a date (midnight UTC).
func (d *decoder) decodeTime(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		for _, layout := range []string{time.RFC3339, "2006-01-02"} {
			if t, err := time.Parse(layout, n.Value); err == nil {
				v.Set(reflect.ValueOf(t))
				return
			}
		}
	}
	d.errorf(n, path, "expected a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z), found %s", kindName(n))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, found %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if seen[k.Value] {
			d.errorf(k, kp, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.errorf(k, kp, "unknown key %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		d.decode(val, v.Field(idx), kp)
	}
}

// fieldsOf maps yaml keys to field indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

// suggest names the closest known key, to turn a typo into an obvious fix.
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 3
	for k := range fields {
		if dist := editDistance(key, k); dist < bestD || dist == bestD && best != "" && k < best {
			best, bestD = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// errList flattens the decoder's errors.
func (d *decoder) err() error { return errors.Join(d.errs...) }

func reflectValue(v any) reflect.Value {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("config: decode needs a non-nil pointer")
	}
	return rv.Elem()
}
