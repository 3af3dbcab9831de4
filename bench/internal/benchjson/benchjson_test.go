package benchjson

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRatioAndMedian(t *testing.T) {
	if got := Ratio(2, 3); got != 0.667 {
		t.Errorf("Ratio(2, 3) = %v", got)
	}
	if got := Ratio(1, 0); got != 0 {
		t.Errorf("Ratio(1, 0) = %v, want 0 (no run)", got)
	}
	vs := []float64{3, 1, 2, 10}
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{3, 1, 2}, 2}, {vs, 2.5}} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if vs[0] != 3 {
		t.Error("Median sorted its argument")
	}
}

// TestReadLinesAndDoc: blank lines skipped, a bad line named by file and
// line, a bad -meta refused before anything is written, meta embedded.
func TestReadLinesAndDoc(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	os.WriteFile(good, []byte("{\"name\":\"a\"}\n\n{\"name\":\"b\"}\n"), 0o600)
	type run struct{ Name string }
	rs, err := ReadLines[run](good)
	if err != nil || len(rs) != 2 || rs[1].Name != "b" {
		t.Fatalf("ReadLines = %+v, %v", rs, err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"name\":\"a\"}\nnot json\n"), 0o600)
	if _, err := ReadLines[run](bad); err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ParseMeta("{oops"); err == nil || !strings.Contains(err.Error(), "-meta") {
		t.Errorf("bad meta: %v", err)
	}
	meta, err := ParseMeta(`{"cores":2}`)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "doc.json")
	if err := WriteDoc(out, map[string]any{"runs": rs}, meta); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), `"cores": 2`) || !strings.Contains(string(b), `"Name": "b"`) {
		t.Errorf("doc: %s", b)
	}
}
