//go:build !lean

package main

import (
	"bytes"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
)

// TestDocuments_roundTrip: fsgit version -o json reads back exactly, every
// field filled, and keeps the JSON conventions.
func TestDocuments_roundTrip(t *testing.T) {
	t.Run("versionInfo", func(t *testing.T) {
		// fsgit version -o json, as writeDoc writes it.
		jsondoctest.RoundTrip[versionInfo](t, jsondoctest.Options{Marshal: func(v any) ([]byte, error) {
			var b bytes.Buffer
			err := writeDoc(&b, outJSON, v)
			return b.Bytes(), err
		}})
	})
}
