package artifact

import (
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
)

// TestRecord_roundTrip: a verification record reads back exactly, every
// field filled.
func TestRecord_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[record](t, jsondoctest.Options{})
}
