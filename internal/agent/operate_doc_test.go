package agent

import (
	"reflect"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// TestOperateDocs_roundTrip: the documents of the operator's API (fsgit
// run, hold, release, rollback) read back exactly, every field filled.
func TestOperateDocs_roundTrip(t *testing.T) {
	opts := jsondoctest.Options{Generators: jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}}
	t.Run("RunRequest", func(t *testing.T) { jsondoctest.RoundTrip[RunRequest](t, opts) })
	t.Run("RunEvent", func(t *testing.T) { jsondoctest.RoundTrip[RunEvent](t, opts) })
	t.Run("HoldRequest", func(t *testing.T) { jsondoctest.RoundTrip[HoldRequest](t, opts) })
	t.Run("ReleaseRequest", func(t *testing.T) { jsondoctest.RoundTrip[ReleaseRequest](t, opts) })
	t.Run("HoldAnswer", func(t *testing.T) { jsondoctest.RoundTrip[HoldAnswer](t, opts) })
	t.Run("KeptAnswer", func(t *testing.T) { jsondoctest.RoundTrip[KeptAnswer](t, opts) })
}
