package pass

import (
	"reflect"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

var classes = jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}

// TestDocuments_roundTrip: the files fsgit apply writes and reads back
// (the last-run summary, the catalog cache) read back exactly, every
// field filled, and keep the JSON conventions.
func TestDocuments_roundTrip(t *testing.T) {
	t.Run("runSummary", func(t *testing.T) {
		jsondoctest.RoundTrip[Summary](t, jsondoctest.Options{Marshal: func(v any) ([]byte, error) { return v.(*Summary).Encode() }})
	})
	t.Run("catalogCacheFile", func(t *testing.T) {
		jsondoctest.RoundTrip[CacheFile](t, jsondoctest.Options{Generators: classes,
			Marshal: func(v any) ([]byte, error) { return v.(*CacheFile).Encode() }})
	})
}
