package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
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
		large(),
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

// large is a summary past the keys and bytes HashObserved keeps on the
// stack.
func large() map[string]string {
	m := map[string]string{}
	for i := range 40 {
		m[strings.Repeat("k", i+1)] = strings.Repeat("v<", 20*i)
	}
	return m
}

// TestMemoryClone: a clone's maps are its own, an empty memory's too.
func TestMemoryClone(t *testing.T) {
	m := NewMemory()
	m.Inventory["file:/a"] = Resource{ID: "file:/a"}
	m.Observed["file:/a"] = NewObservedState(map[string]string{"ensure": "file"})
	m.Refresh["service:x"] = []ID{"file:/a"}
	m.Applied = []AppliedCatalog{{Revision: "r1"}}
	c := m.Clone()
	c.Inventory["file:/b"] = Resource{ID: "file:/b"}
	delete(c.Observed, "file:/a")
	c.Refresh["service:y"] = nil
	c.Applied[0].Revision = "r2"
	if len(m.Inventory) != 1 || len(m.Observed) != 1 || len(m.Refresh) != 1 || m.Applied[0].Revision != "r1" {
		t.Fatalf("changing the clone changed the memory: %+v", m)
	}
	for _, e := range []*Memory{nil, {}} {
		c := e.Clone()
		c.Inventory["x:y"] = Resource{}
		c.Observed["x:y"] = ObservedState{}
		c.Refresh["x:y"] = nil
	}
}
