package state

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

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
	hash, rest, ok := plainString(rest)
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
			if k, rest, ok = plainString(rest); !ok {
				return false
			}
			if rest, ok = bytes.CutPrefix(rest, []byte(":")); !ok {
				return false
			}
			if v, rest, ok = plainString(rest); !ok {
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

// plainString reads a JSON string at the start of b that needs no
// unescaping (a quote, valid UTF-8 without a backslash or a control
// character, and the closing quote) and returns it and what follows.
func plainString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", nil, false
	}
	raw := b[1 : 1+end]
	for _, c := range raw {
		if c < 0x20 || c == '\\' {
			return "", nil, false
		}
	}
	if !utf8.Valid(raw) {
		return "", nil, false
	}
	return string(raw), b[2+end:], true
}

// decodeResource decodes an inventory entry as json.Unmarshal does. The
// state file holds json.Marshal's encoding of each resource: its fields in
// order (id, then require, notify, mode and allowDestroy when set), plain
// strings, and last the spec, an object. That form is read here without
// reflection, the spec checked with json.Valid; anything else
// goes to json.Unmarshal. FuzzDecodeResource holds the two equal.
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
	rest, ok := bytes.CutPrefix(b, []byte(`{"id":`))
	if !ok {
		return false
	}
	var out reconciler.Resource
	id, rest, ok := plainString(rest)
	if !ok {
		return false
	}
	out.ID = reconciler.ID(id)
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"require":`)); ok {
		if out.Require, rest, ok = plainIDs(rest); !ok {
			return false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"notify":`)); ok {
		if out.Notify, rest, ok = plainIDs(rest); !ok {
			return false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"mode":`)); ok {
		var mode string
		if mode, rest, ok = plainString(rest); !ok {
			return false
		}
		out.Mode = reconciler.Mode(mode)
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"allowDestroy":true`)); ok {
		out.AllowDestroy = true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"spec":`)); !ok {
		return false
	}
	// The spec runs to the resource's closing brace: one object, valid,
	// nothing around it.
	spec, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok || len(spec) < 2 || spec[0] != '{' || spec[len(spec)-1] != '}' || !json.Valid(spec) {
		return false
	}
	// Capped at its length: an append to the spec copies it rather than
	// write over b's closing brace.
	out.Spec = spec[:len(spec):len(spec)]
	*r = out
	return true
}

// plainIDs reads a JSON array of plain strings at the start of b.
func plainIDs(b []byte) (ids []reconciler.ID, rest []byte, ok bool) {
	rest, ok = bytes.CutPrefix(b, []byte("["))
	if !ok {
		return nil, nil, false
	}
	ids = []reconciler.ID{}
	if rest, ok = bytes.CutPrefix(rest, []byte("]")); ok {
		return ids, rest, true
	}
	for {
		var s string
		if s, rest, ok = plainString(rest); !ok {
			return nil, nil, false
		}
		ids = append(ids, reconciler.ID(s))
		if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
			break
		}
	}
	rest, ok = bytes.CutPrefix(rest, []byte("]"))
	return ids, rest, ok
}
