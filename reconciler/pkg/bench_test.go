package pkg

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// BenchmarkKind_Plan_run measures one run's observation of every installed
// package on this machine: one dpkg-query, then one plan per package.
func BenchmarkKind_Plan_run(b *testing.B) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Package}\n").Output()
	if err != nil {
		b.Skipf("no dpkg here: %v", err)
	}
	names := strings.Fields(string(out))
	k := New()
	ctx := context.Background()
	rs := make([]*reconciler.Resource, 0, len(names))
	for _, n := range names {
		rs = append(rs, resource(b, n, map[string]any{"ensure": "installed"}))
	}
	for b.Loop() {
		env := newEnv()
		for _, r := range rs {
			p, err := k.Plan(ctx, env, r)
			if err != nil || p.HasChanges() {
				b.Fatalf("plan: %v %+v", err, p)
			}
		}
	}
	b.ReportMetric(float64(len(names)), "packages/run")
}
