package desired

import (
	"context"
	"testing"
)

// TestInputKey checks that a node's key changes with what its catalog is
// computed from, and only with that: a change to one role changes the
// keys of that role's nodes, and of no other.
func TestInputKey(t *testing.T) {
	keys := func(extra map[string]string) map[string]string {
		t.Helper()
		s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, n := range s.Nodes() {
			k, ok := s.InputKey(n)
			if !ok {
				t.Fatalf("node %s: no key", n)
			}
			out[n] = k
		}
		return out
	}
	base := keys(nil)
	if again := keys(nil); len(again) != len(base) {
		t.Fatal("not the same nodes")
	} else {
		for n, k := range base {
			if again[n] != k {
				t.Errorf("node %s: the key changes between two loads of one site", n)
			}
		}
	}
	for _, tc := range []struct {
		name, file, content string
		changed             []string
	}{
		{"one role's data", "sites/example/more.cue", "package example\n\nroles: feature_store_vector: data: base: packages: [\"jq\"]\n", []string{"vector-1"}},
		{"one node", "sites/example/more.cue", "package example\n\nnodes: \"online-1\": address: \"10.0.0.1\"\n", []string{"online-1"}},
		{"site data", "sites/example/more.cue", "package example\n\ndata: base: sysctl: \"vm.swappiness\": 10\n", []string{"monitoring-1", "offline-1", "online-1", "vector-1"}},
		// The monitoring node scrapes every node: its topology changes.
		{"a new node", "sites/example/more.cue", "package example\n\nnodes: \"online-2\": role: \"feature_store_online\"\n", []string{"monitoring-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := keys(map[string]string{tc.file: tc.content})
			want := map[string]bool{}
			for _, n := range tc.changed {
				want[n] = true
			}
			for n, k := range got {
				if base[n] == "" {
					continue
				}
				if (k != base[n]) != want[n] {
					t.Errorf("node %s: key changed %v, want %v", n, k != base[n], want[n])
				}
			}
		})
	}
}
