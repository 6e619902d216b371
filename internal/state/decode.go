package state

import (
	"bytes"
	"encoding/json"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// decodeObserved decodes an observed state as json.Unmarshal does. The
// state file holds json.Marshal's encoding of each, {"hash":"…"} and
// {"hash":"…","fields":{"k":"v",…}}: that form, with plain strings (valid
// UTF-8, nothing escaped), is read here without reflection; anything
// else goes to json.Unmarshal. FuzzDecodeObserved holds the two equal.
func decodeObserved(b []byte, o *reconciler.ObservedState) error {
	if fastObserved(b, o) {
		return nil
	}
	*o = reconciler.ObservedState{}
	return json.Unmarshal(b, o)
}

// fastObserved decodes b into o if b has the plain form, and reports
// whether it had.
func fastObserved(b []byte, o *reconciler.ObservedState) bool {
	rest, ok := bytes.CutPrefix(b, []byte(`{"hash":`))
	if !ok {
		return false
	}
	hash, rest, ok := jsondoc.PlainString(rest)
	if !ok {
		return false
	}
	if string(rest) == "}" {
		*o = reconciler.ObservedState{Hash: hash}
		return true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"fields":{`)); !ok {
		return false
	}
	fields := map[string]string{}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
		for {
			var k, v string
			if k, rest, ok = jsondoc.PlainString(rest); !ok {
				return false
			}
			if rest, ok = bytes.CutPrefix(rest, []byte(":")); !ok {
				return false
			}
			if v, rest, ok = jsondoc.PlainString(rest); !ok {
				return false
			}
			fields[k] = v
			if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
				break
			}
		}
		if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
			return false
		}
	}
	if string(rest) != "}" {
		return false
	}
	*o = reconciler.ObservedState{Hash: hash, Fields: fields}
	return true
}

// decodeResource decodes an inventory entry as json.Unmarshal does. The
// state file holds json.Marshal's encoding of each resource: its fields in
// order (id, then require, notify, mode and allowDestroy when set), plain
// strings, and last the spec, an object. That form is read without
// reflection (reconciler.CutResource), the spec checked as json.Valid
// checks it; anything else goes to json.Unmarshal. FuzzDecodeResource
// holds the two equal.
//
// The spec is b's own bytes, not a copy: b must not change after (the
// store decodes its own copy of each entry, which it keeps as it is).
func decodeResource(b []byte, r *reconciler.Resource) error {
	if fastResource(b, r) {
		return nil
	}
	*r = reconciler.Resource{}
	return json.Unmarshal(b, r)
}

// fastResource decodes b into r if b has the plain form, and reports
// whether it had.
func fastResource(b []byte, r *reconciler.Resource) bool {
	out, rest, ok := reconciler.CutResource(b, nil)
	if !ok || len(rest) != 0 {
		return false
	}
	*r = out
	return true
}
