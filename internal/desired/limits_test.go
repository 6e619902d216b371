package desired

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/sitefiles"
)

// TestCheckDepth counts levels as documented: a label of a chain and each
// bracket are one level; commas and newlines end a chain; interpolations
// are scanned through.
func TestCheckDepth(t *testing.T) {
	for _, tc := range []struct {
		src   string
		depth int // the smallest limit that passes
	}{
		{"a: 1\n", 1},
		{"a: b: c: 1\n", 3},
		{"a: b: 1\nc: 1\n", 2},
		{"a: {b: 1, c: d: 2}\n", 4},
		{"a: [1, [2, [3]]]\n", 4},
		{"a: \"x\\(b.c + (d))y\\((e))\"\nb: c: 1\nd: 1\ne: 1\n", 3},
		{"a: [for x in [1] {y: x}]\n", 4},
		{"a: " + strings.Repeat("a: ", 100) + "1\n", 101},
		{"a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", 101},
		{"a: " + strings.Repeat("{b: ", 50) + strings.Repeat("}", 50) + "\n", 101},
	} {
		if sh := checkShape("f.cue", []byte(tc.src), tc.depth, -1); sh.Pos.IsValid() {
			t.Errorf("%.40q with limit %d: refused at %s (%s)", tc.src, tc.depth, sh.Pos, sh.Limit)
		}
		if sh := checkShape("f.cue", []byte(tc.src), tc.depth-1, -1); sh.Limit != "depth" {
			t.Errorf("%.40q with limit %d: not refused", tc.src, tc.depth-1)
		}
	}
}

// TestCheckTerms counts the terms of one chain of binary operators; a
// comma, a label or a bracket starts another.
func TestCheckTerms(t *testing.T) {
	for _, tc := range []struct {
		src   string
		terms int // the smallest limit that passes
	}{
		{"a: -1 + 2\n", 2},
		{"a: 1 + 2 + 3\n", 3},
		{"a: 1 + 2\nb: 3 + 4 + 5\n", 3},
		{"a: *\"x\" | \"y\" | \"z\"\n", 3},
		{"a: (1 + 2) * (3 + 4 + 5)\n", 3},
		{"a: [1 + 2, 3 + 4]\n", 2},
		{"a: b: 1 | 2\n", 2},
		{"a: string & =~\"^x\" & !=\"\"\n", 3},
		{"a: " + strings.Repeat("1 + ", 300) + "1\n", 301},
	} {
		if sh := checkShape("f.cue", []byte(tc.src), -1, tc.terms); sh.Pos.IsValid() {
			t.Errorf("%.40q with limit %d: refused at %s (%s)", tc.src, tc.terms, sh.Pos, sh.Limit)
		}
		if sh := checkShape("f.cue", []byte(tc.src), -1, tc.terms-1); sh.Limit != "terms" {
			t.Errorf("%.40q with limit %d: not refused", tc.src, tc.terms-1)
		}
	}
}

// TestShippedFilesWithinLimits: the embedded profiles and the example site
// stay well inside the default limits (half of each), so that the
// defaults never refuse an ordinary site.
func TestShippedFilesWithinLimits(t *testing.T) {
	var total int64
	maxDepth, maxTerms := 0, 0
	for _, dir := range []string{filepath.Join(repoRoot, "schema"), filepath.Join(repoRoot, "sites/example")} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cue") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			total += int64(len(b))
			for lim := 1; ; lim++ {
				if sh := checkShape(p, b, lim, -1); !sh.Pos.IsValid() {
					maxDepth = max(maxDepth, lim)
					break
				}
			}
			for lim := 1; ; lim++ {
				if sh := checkShape(p, b, -1, lim); !sh.Pos.IsValid() {
					maxTerms = max(maxTerms, lim)
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("shipped .cue files: %d bytes, nested %d levels at most, expressions of %d terms at most", total, maxDepth, maxTerms)
	if maxTerms > DefaultMaxTerms/2 {
		t.Errorf("the shipped files have an expression of %d terms, more than half the default limit %d", maxTerms, DefaultMaxTerms)
	}
	if maxDepth > DefaultMaxDepth/2 {
		t.Errorf("the shipped files nest %d levels, more than half the default limit %d", maxDepth, DefaultMaxDepth)
	}
	if total > DefaultMaxSiteBytes/2 {
		t.Errorf("the shipped files are %d bytes, more than half the default limit %d", total, DefaultMaxSiteBytes)
	}
}

// TestLoad_DeepChain is issue 12's input: a 100,000-level label chain in
// a 300 KB file (33 s at 20,000 levels and over 300 s at 100,000 before
// the limit). It is refused before evaluation, at the label past the
// limit; the time it took is logged (figures, not an assertion).
func TestLoad_DeepChain(t *testing.T) {
	src := `package deep

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "deep"
roles: db: profiles: ["base"]
nodes: "n1": role: "db"
nodes: "n1": data: ` + strings.Repeat("a: ", 100_000) + "1\n"
	fsys := sitefiles.NewMemFS(map[string][]byte{"sites/deep/site.cue": []byte(src)})
	start := time.Now()
	_, err := Load(t.Context(), Source{FS: fsys, SiteDir: "sites/deep"})
	t.Logf("100,000 levels (%d bytes): refused in %s", len(src), time.Since(start))
	var inv *InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 {
		t.Fatalf("err = %v, want one problem", err)
	}
	want := "sites/deep/site.cue:10:204: nested deeper than the limit of 64 levels"
	if got := inv.Problems[0].String(); !strings.HasPrefix(got, want) {
		t.Fatalf("problem = %q, want it to start with %q", got, want)
	}
}

// TestLoad_Budget: an evaluation that overruns the budget returns a
// *BudgetError at the budget, with the site and the limit in its message;
// Done is closed when the abandoned evaluation ends.
func TestLoad_Budget(t *testing.T) {
	src := `package slow

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "slow"
roles: db: profiles: []
nodes: "n1": role: "db"
_l: [for i, _ in [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] {i}]
nodes: "n1": data: _y: [for a in _l for b in _l for c in _l {a + b + c}]
`
	fsys := sitefiles.NewMemFS(map[string][]byte{"sites/slow/site.cue": []byte(src)})
	start := time.Now()
	_, err := Load(t.Context(), Source{FS: fsys, SiteDir: "sites/slow", Limits: Limits{EvalTimeout: 100 * time.Millisecond}})
	took := time.Since(start)
	var be *BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BudgetError", err)
	}
	t.Logf("gave up after %s: %v", took, err)
	if !strings.HasPrefix(err.Error(), "sites/slow: evaluating the site took longer than its time budget of 100ms") {
		t.Fatalf("message: %q", err)
	}
	select {
	case <-be.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the abandoned evaluation never ended")
	}
	t.Logf("the abandoned evaluation ended %s after the start", time.Since(start))
}

// TestCatalog_KeepCatalogs: the site's pruning.keepCatalogs reaches every
// node's catalog; unset, the catalog leaves it to the engine's default; out
// of range, vet says where.
func TestCatalog_KeepCatalogs(t *testing.T) {
	site := func(extra string) Source {
		return Source{FS: sitefiles.NewMemFS(map[string][]byte{"sites/k/site.cue": []byte(`package k

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "k"
roles: db: profiles: []
nodes: "n1": role: "db"
` + extra)}), SiteDir: "sites/k"}
	}
	for extra, want := range map[string]int{"": 0, "pruning: keepCatalogs: 5\n": 5} {
		s, err := Load(t.Context(), site(extra))
		if err != nil {
			t.Fatal(err)
		}
		cat, err := s.Catalog("n1")
		if err != nil {
			t.Fatal(err)
		}
		if cat.KeepCatalogs != want {
			t.Errorf("%q: keepCatalogs %d, want %d", extra, cat.KeepCatalogs, want)
		}
	}
	_, err := Load(t.Context(), site("pruning: keepCatalogs: 0\n"))
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.HasPrefix(inv.Problems[0].String(), "sites/k/site.cue:10:24: ") {
		t.Fatalf("keepCatalogs 0: %v", err)
	}
	probs := inv.Problems
	t.Logf("keepCatalogs 0: %s", probs[0])
}
