//go:build !lean

package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

var revisionRE = regexp.MustCompile(`(revision"?:? "?)sha256:[0-9a-f]{64}`)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestRender_Golden renders the three nodes of sites/example and compares
// them with testdata/golden (go test -run TestRender_Golden -update to
// rewrite them after a deliberate change).
func TestRender_Golden(t *testing.T) {
	cases := []struct{ node, format, golden string }{
		{"online-1", "json", "online-1.json"},
		{"offline-1", "json", "offline-1.json"},
		{"vector-1", "json", "vector-1.json"},
		{"online-1", "text", "online-1.txt"},
		{"vector-1", "yaml", "vector-1.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			root := newRootCmd()
			root.SetOut(&stdout)
			root.SetErr(&stderr)
			root.SetArgs([]string{"render", "--site", "../../sites/example", "--node", tc.node, "-o", tc.format})
			if err := root.Execute(); err != nil {
				t.Fatalf("render: %v\n%s", err, stderr.String())
			}
			// The revision hashes every file of the repository's sites/ and
			// schema/profile/: it is checked in internal/desired, not here.
			got := revisionRE.ReplaceAll(stdout.Bytes(), []byte("${1}sha256:REVISION"))
			path := filepath.Join("testdata/golden", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render %s -o %s differs from %s (run with -update after a deliberate change):\n%s", tc.node, tc.format, path, firstDiff(string(got), string(want)))
			}
		})
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := bytes.Split([]byte(got), []byte("\n")), bytes.Split([]byte(want), []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return "line " + strconv.Itoa(i+1) + ":\n  got:  " + string(gl) + "\n  want: " + string(wl)
		}
	}
	return ""
}
