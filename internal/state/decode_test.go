package state

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// observedSeeds are encodings of observed states, as the state file holds
// them and as it could.
var observedSeeds = []string{
	`{"hash":"sha256:00"}`,
	`{"hash":"sha256:00","fields":{"content":"sha256:ab","mode":"0644","owner":"root"}}`,
	`{"hash":"","fields":{}}`,
	`{"hash":"h","fields":{"k":"1","k":"2"}}`,
	`{"hash":"h","fields":{"k":"caf\u00e9 <b>"}}`,
	`{"hash":"h","fields":{"k":"a\"b"}}`,
	`{"hash":"h","fields":{"é":"ü"}}`,
	`{"hash":"h","fields":{"k":"` + "\xff" + `"}}`,
	`{"Hash":"h"}`,
	`{"hash":"h","fields":null}`,
	`{"hash":"h"} `,
	`{"hash":"h","fields":{"k":"v",}}`,
	`{"hash":"h","fields":{"k":"v"}`,
	`{"hash":"h","fields":{"k":"v"}}}`,
	`{"hash":"h","other":1}`,
	`{"hash":1}`,
	`{"hash":"h`,
	``,
}

// checkObserved: whatever decodeObserved's fast path accepts, json.Unmarshal
// decodes to the same value; and decodeObserved always agrees with it.
func checkObserved(t *testing.T, b []byte) {
	t.Helper()
	var want reconciler.ObservedState
	wantErr := json.Unmarshal(b, &want)
	var fast reconciler.ObservedState
	if fastObserved(b, &fast) && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("%q: the fast path gives %#v, json.Unmarshal %#v (%v)", b, fast, want, wantErr)
	}
	var got reconciler.ObservedState
	err := decodeObserved(b, &got)
	if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: decodeObserved gives %#v (%v), json.Unmarshal %#v (%v)", b, got, err, want, wantErr)
	}
}

func TestDecodeObserved(t *testing.T) {
	for _, s := range observedSeeds {
		checkObserved(t, []byte(s))
	}
	// What the store writes takes the fast path.
	o := reconciler.NewObservedState(map[string]string{"content": "sha256:ab", "mode": "0644"})
	b, _ := json.Marshal(o)
	var got reconciler.ObservedState
	if !fastObserved(b, &got) || !reflect.DeepEqual(got, o) {
		t.Fatalf("%s: not read by the fast path, or read as %#v", b, got)
	}
	b, _ = json.Marshal(reconciler.ObservedState{Hash: "sha256:00"})
	if !fastObserved(b, &got) || got.Fields != nil {
		t.Fatalf("%s: not read by the fast path, or read as %#v", b, got)
	}
}

// FuzzDecodeObserved: go test -fuzz FuzzDecodeObserved ./internal/state.
func FuzzDecodeObserved(f *testing.F) {
	for _, s := range observedSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkObserved(t, b) })
}

// resourceSeeds are encodings of inventory entries, as the state file
// holds them and as it could.
var resourceSeeds = []string{
	`{"id":"file:/a","spec":{"content":"x"}}`,
	`{"id":"file:/a","require":["directory:/"],"notify":["service:s","service:t"],"mode":"detect","allowDestroy":true,"spec":{"a":{"b":[1,2]}}}`,
	`{"id":"file:/a","require":[],"spec":{}}`,
	`{"id":"file:/a","spec":{"a":"}"}}`,
	`{"id":"file:/a","spec":{"a":1},"spec":{"b":2}}`,
	`{"id":"file:/a","spec":{"a":1} }`,
	`{"id":"file:/a","spec": {"a":1}}`,
	`{"id":"file:/a","spec":null}`,
	`{"id":"file:/a","spec":[1]}`,
	`{"id":"file:/a","allowDestroy":false,"spec":{}}`,
	`{"id":"file:/a","mode":"enforce","require":["x:y"],"spec":{}}`,
	`{"id":"file:/a\u00e9","spec":{"k":"\u003c"}}`,
	`{"id":"file:/` + "\xff" + `","spec":{}}`,
	`{"id":"file:/a","spec":{"a":1}`,
	`{"id":"file:/a","spec":{"a":}}`,
	`{"ID":"file:/a","spec":{}}`,
	`{"id":"file:/a","require":["x:y",],"spec":{}}`,
	``,
}

// checkResource: as checkObserved, for inventory entries.
func checkResource(t *testing.T, b []byte) {
	t.Helper()
	var want reconciler.Resource
	wantErr := json.Unmarshal(b, &want)
	var fast reconciler.Resource
	if fastResource(b, &fast) && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("%q: the fast path gives %#v, json.Unmarshal %#v (%v)", b, fast, want, wantErr)
	}
	var got reconciler.Resource
	err := decodeResource(b, &got)
	if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: decodeResource gives %#v (%v), json.Unmarshal %#v (%v)", b, got, err, want, wantErr)
	}
}

func TestDecodeResource(t *testing.T) {
	for _, s := range resourceSeeds {
		checkResource(t, []byte(s))
	}
	// What the store writes takes the fast path.
	for _, r := range []reconciler.Resource{
		{ID: "file:/etc/a", Spec: json.RawMessage(`{"content":"x","mode":"0644"}`)},
		{ID: "service:s", Require: []reconciler.ID{"file:/etc/a"}, Notify: []reconciler.ID{"x:y"}, Mode: reconciler.ModeDetect, AllowDestroy: true, Spec: json.RawMessage(`{"name":"s"}`)},
	} {
		b, _ := json.Marshal(r)
		var got reconciler.Resource
		if !fastResource(b, &got) || !reflect.DeepEqual(got, r) {
			t.Fatalf("%s: not read by the fast path, or read as %#v", b, got)
		}
	}
}

// FuzzDecodeResource: go test -fuzz FuzzDecodeResource ./internal/state.
func FuzzDecodeResource(f *testing.F) {
	for _, s := range resourceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkResource(t, b) })
}
