package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// benchFileSpec has the shape of the file kind's spec (reconciler/file),
// the kind of nearly every resource of a large catalog.
type benchFileSpec struct {
	Path          string               `json:"path"`
	Ensure        Ensure               `json:"ensure"`
	Content       *string              `json:"content,omitempty"`
	ContentSHA256 string               `json:"contentSha256,omitempty"`
	Secrets       map[string]SecretRef `json:"secrets,omitempty"`
	Owner         string               `json:"owner"`
	Group         string               `json:"group"`
	Mode          string               `json:"mode"`
}

type benchFileKind struct{}

func (benchFileKind) Kind() string { return "bfile" }

func (benchFileKind) Plan(context.Context, *Env, *Resource, *benchFileSpec) (*Plan, error) {
	return &Plan{}, nil
}

// benchFileResources returns n resources whose specs are those of the
// no-op benchmark's site (/tmp/fsgit-bench.*): a file of five lines, as
// the catalog cache holds them (compact, keys sorted).
func benchFileResources(n int) []Resource {
	rs := make([]Resource, n)
	for i := range rs {
		path := fmt.Sprintf("/bench/files/f%04d.conf", i+1)
		spec := fmt.Sprintf(`{"content":"# managed by the fsgit benchmark\nid = %d\nname = feature-store-%04d\nbuffer_pool_size = %dM\nlisten = 127.0.0.1:%d\n","ensure":"present","group":"root","mode":"0640","owner":"root","path":%q}`,
			i+1, i+1, 129+i, 20001+i, path)
		rs[i] = Resource{ID: NewID("bfile", path), Spec: json.RawMessage(spec)}
	}
	return rs
}

// BenchmarkDecodeSpec decodes the spec of one file resource per
// operation: Typed is what preparing a catalog does for each resource,
// DecodeSpec the one-off decode of [Resource.DecodeSpec].
func BenchmarkDecodeSpec(b *testing.B) {
	rs := benchFileResources(1000)
	b.Run("Typed", func(b *testing.B) {
		k := NewTyped[benchFileSpec](benchFileKind{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := k.Decode(&rs[i%len(rs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TypedParallel", func(b *testing.B) {
		k := NewTyped[benchFileSpec](benchFileKind{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := k.Decode(&rs[i%len(rs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("DecodeSpec", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var s benchFileSpec
			if err := rs[i%len(rs)].DecodeSpec(&s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
