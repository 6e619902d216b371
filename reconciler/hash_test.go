package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// hashObservedJSON is HashObserved as it was first written: the sha256 of
// json.Marshal of the map. Hashes in state files were made so.
func hashObservedJSON(fields map[string]string) string {
	if fields == nil {
		fields = map[string]string{}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestHashObservedIsJSON(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{},
		{"ensure": "file", "mode": "0644", "sha256": "sha256:ab"},
		{"b": "1", "a": "2", "A": "3", "": ""},
		{"quote\"back\\slash": "tab\tnl\ncr\rbs\bff\f\x00\x1f\x7f"},
		{"html": "<a href=\"x\">&amp;</a>"},
		{"utf8": "héllo wörld ✓ 𝄞", "bad": "\xff\xfe ok \xc3"},
		{"seps": "line\u2028para\u2029end"},
	} {
		if got, want := HashObserved(m), hashObservedJSON(m); got != want {
			t.Errorf("%q: %s, json.Marshal gives %s", m, got, want)
		}
	}
}

func FuzzHashObserved(f *testing.F) {
	f.Add("ensure", "file", "mode", "0644")
	f.Add("a<b", "\u2028\xff\"", "", "\x00")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		if got, want := HashObserved(m), hashObservedJSON(m); got != want {
			t.Fatalf("%q: %s, json.Marshal gives %s", m, got, want)
		}
	})
}
