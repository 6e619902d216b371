package reconciler_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

var classes = jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}

// TestDocuments_roundTrip: what this package puts in documents reads back
// exactly, every field filled: the report (fsgit apply -o json), the
// catalog (the catalog cache, and the inventory in the state), the
// observed state (kept in the state) and a change (in the node status and
// plans).
func TestDocuments_roundTrip(t *testing.T) {
	opts := jsondoctest.Options{Generators: classes}
	t.Run("Report", func(t *testing.T) { jsondoctest.RoundTrip[reconciler.Report](t, opts) })
	t.Run("Catalog", func(t *testing.T) {
		// The catalog cache is written compact, without HTML escapes.
		opts := opts
		opts.Marshal = func(v any) ([]byte, error) {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			err := enc.Encode(v)
			return b.Bytes(), err
		}
		jsondoctest.RoundTrip[reconciler.Catalog](t, opts)
	})
	t.Run("ObservedState", func(t *testing.T) { jsondoctest.RoundTrip[reconciler.ObservedState](t, opts) })
	t.Run("Change", func(t *testing.T) { jsondoctest.RoundTrip[reconciler.Change](t, opts) })
}

func TestClass_text(t *testing.T) {
	for _, c := range reconciler.Classes {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back reconciler.Class
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("%s read back as %v, %v", b, back, err)
		}
	}
	var c reconciler.Class
	if err := json.Unmarshal([]byte(`"harmless"`), &c); err == nil || !strings.Contains(err.Error(), "want safe, disruptive or destructive") {
		t.Errorf("an unknown class reads as %v, %v", c, err)
	}
	if _, err := json.Marshal(reconciler.Class(7)); err == nil {
		t.Error("an unknown class is written")
	}
}
