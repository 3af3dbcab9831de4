// Package benchjson holds what the benchmark's report commands
// (bench/report, bench/mtlsreport) share: reading loadgen's JSON lines,
// the ratio and median they print, and writing the results document with
// the run's metadata.
package benchjson

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
)

// ReadLines reads a file of JSON lines (loadgen -out) into values of T,
// skipping blank lines. Errors name the file, and the line for a line
// that is not T.
func ReadLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// Ratio is a ÷ b rounded to three decimals, or 0 when b is 0 (no run).
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

// Median is the middle value of vs, or the mean of the middle two
// rounded to three decimals; 0 for none. vs is left as it is.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return math.Round((s[m-1]+s[m])/2*1000) / 1000
}

// ParseMeta parses a -meta flag, a JSON object of run metadata; "" is
// none (nil). Check it before writing anything, so that a bad value
// leaves no half-written results.
func ParseMeta(meta string) (map[string]any, error) {
	if meta == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return nil, fmt.Errorf("-meta: %w", err)
	}
	return m, nil
}

// WriteDoc writes doc as indented JSON to path, with meta under "meta"
// when it is not nil.
func WriteDoc(path string, doc, meta map[string]any) error {
	if meta != nil {
		doc["meta"] = meta
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
