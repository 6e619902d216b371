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
