package exec

import (
	"context"
	"testing"
)

// BenchmarkKind_Plan measures what a quiet exec costs per run: a stat for
// creates, a fork and exec for unless.
func BenchmarkKind_Plan(b *testing.B) {
	cases := map[string]map[string]any{
		"creates": {"command": sh("true"), "creates": "/"},
		"unless":  {"command": sh("true"), "unless": []string{"/bin/true"}},
	}
	for name, spec := range cases {
		b.Run(name, func(b *testing.B) {
			r := resource(b, spec)
			k := New()
			for b.Loop() {
				p, err := k.Plan(context.Background(), newEnv(), r)
				if err != nil || p.HasChanges() {
					b.Fatalf("plan: %v %+v", err, p)
				}
			}
		})
	}
}
