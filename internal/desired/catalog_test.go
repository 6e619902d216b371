package desired

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"cuelang.org/go/cue"

	"github.com/fsgit/fsgit/reconciler"
)

// decodePartViaJSON is how parts were decoded before decodePart read the
// CUE value directly: CUE's JSON, decoded, and re-encoded with sorted keys
// and numbers as written. decodePart must give the same bytes.
func decodePartViaJSON(t *testing.T, v cue.Value) map[reconciler.ID]reconciler.Resource {
	t.Helper()
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var byID map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &byID); err != nil {
		t.Fatal(err)
	}
	out := map[reconciler.ID]reconciler.Resource{}
	for id, fields := range byID {
		r := reconciler.Resource{ID: reconciler.ID(id), Mode: reconciler.ModeEnforce}
		for name, dst := range map[string]any{"require": &r.Require, "notify": &r.Notify, "drift": &r.Mode, "allowDestroy": &r.AllowDestroy} {
			if raw, ok := fields[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatal(err)
				}
				delete(fields, name)
			}
		}
		obj := map[string]any{}
		for k, raw := range fields {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var x any
			if err := dec.Decode(&x); err != nil {
				t.Fatal(err)
			}
			obj[k] = x
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(obj); err != nil {
			t.Fatal(err)
		}
		r.Spec = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		out[r.ID] = r
	}
	return out
}

// TestDecodePartSameBytes checks that every resource of every node of the
// example decodes to the bytes the JSON round trip gave, specs included
// (multi-line contents, numbers, secrets, lists of objects, "<" and "&").
func TestDecodePartSameBytes(t *testing.T) {
	extra := map[string]string{"sites/example/extra.cue": `package example

nodes: "online-1": resources: "file:/etc/fsgit-test": {
	content: "<a & b>\n\ttab \"q\" \u00e9\n"
	mode:    "0644"
}
`}
	s, err := Load(context.Background(), Source{FS: exampleFS(t, extra), SiteDir: "sites/example"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range s.Nodes() {
		_, src, err := s.CatalogSources(node)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, pt := range src.from {
			if seen[pt.name] {
				continue
			}
			seen[pt.name] = true
			got, err := decodePart(pt.value)
			if err != nil {
				t.Fatal(err)
			}
			want := decodePartViaJSON(t, pt.value)
			if len(got) != len(want) {
				t.Fatalf("node %s %s: %d resources, want %d", node, pt.name, len(got), len(want))
			}
			for _, r := range got {
				a, _ := json.Marshal(r)
				b, _ := json.Marshal(want[r.ID])
				if !bytes.Equal(a, b) {
					t.Errorf("node %s %s: %s\ngot  %s\nwant %s", node, pt.name, r.ID, a, b)
				}
				n++
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d resources compared", n)
	}
}
