package iceberg

import (
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
)

// TestWire_roundTrip: what fsgit and fsgit-iceberg send each other over
// the pipe reads back exactly, every field filled.
func TestWire_roundTrip(t *testing.T) {
	t.Run("Request", func(t *testing.T) { jsondoctest.RoundTrip[Request](t, jsondoctest.Options{}) })
	t.Run("Response", func(t *testing.T) { jsondoctest.RoundTrip[Response](t, jsondoctest.Options{}) })
}
