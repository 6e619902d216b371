package file

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// BenchmarkFile_PlanConverged plans 1,000 converged files in one run, the
// quiet run of the Puppet benchmark (scripts/bench-vs-puppet.sh).
func BenchmarkFile_PlanConverged(b *testing.B) {
	root := b.TempDir()
	var rs []*reconciler.Resource
	for i := 0; i < 1000; i++ {
		p := fmt.Sprintf("/bench/files/f%04d.conf", i)
		c := fmt.Sprintf("# managed\nid = %d\nname = feature-store-%04d\n", i, i)
		r := resource(b, "file", p, fileSpecOf(p, &c, "0640"))
		converge(b, root, NewFile(), r, nil)
		rs = append(rs, r)
	}
	if _, err := filepath.Glob(filepath.Join(root, "bench/files/*")); err != nil {
		b.Fatal(err)
	}
	k := NewFile()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env := testEnv(b, root, nil)
		for _, r := range rs {
			p, err := k.Plan(context.Background(), env, r)
			if err != nil {
				b.Fatal(err)
			}
			if p.HasChanges() {
				b.Fatalf("%s: %v", r.ID, fields(p))
			}
		}
	}
}
