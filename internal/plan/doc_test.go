package plan

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// TestPlan_roundTrip: fsgit plan -o json reads back exactly, every field
// filled (a resource's class once could not be read back).
func TestPlan_roundTrip(t *testing.T) {
	opts := jsondoctest.Options{
		Generators: jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)},
		Marshal: func(v any) ([]byte, error) {
			var b bytes.Buffer
			err := v.(*Plan).WriteJSON(&b)
			return b.Bytes(), err
		},
	}
	jsondoctest.RoundTrip[Plan](t, opts)
	jsondoctest.RoundTrip[Summary](t, jsondoctest.Options{})
}
