package reconciler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"unicode/utf8"
)

// Memory is what a node remembers between runs: what fsgit manages (to
// prune what leaves the catalog) and how each resource looked when fsgit
// last saw it converged (to tell drift from a change of the desired state).
// internal/state keeps it in bbolt; the engine reads it before a run
// ([RunOptions.Prior]) and says what it should become ([Report.Next]).
type Memory struct {
	// Inventory holds every resource fsgit applied and may have to remove,
	// as it was last applied. Specs hold secret references, never values.
	Inventory map[ID]Resource
	// Observed holds the last converged observed state of each resource.
	Observed map[ID]ObservedState
	// Refresh holds refreshes owed: a resource notified by a change whose
	// refresh failed or did not run (its run stopped, a dependency
	// failed), with the notifiers. The next run refreshes it even though
	// the notifiers are quiet by then, so that a config change is never
	// left without its restart.
	Refresh map[ID][]ID
	// Applied lists the node's last applied catalogs, newest first, as
	// many as the catalog keeps ([Catalog.KeepCatalogs]): pruning keeps
	// what they reference for rollback ([Retainer]).
	Applied []AppliedCatalog
}

// NewMemory returns an empty memory.
func NewMemory() *Memory {
	return &Memory{Inventory: map[ID]Resource{}, Observed: map[ID]ObservedState{}, Refresh: map[ID][]ID{}}
}

// Clone returns a copy whose maps can be changed without touching m. The
// resources and observed fields themselves are shared: they are never
// modified in place. The maps are copied whole (maps.Clone), not entry by
// entry: every run clones the memory of every resource.
func (m *Memory) Clone() *Memory {
	if m == nil {
		return NewMemory()
	}
	return &Memory{
		Inventory: cloneMap(m.Inventory),
		Observed:  cloneMap(m.Observed),
		Refresh:   cloneMap(m.Refresh),
		Applied:   slices.Clone(m.Applied),
	}
}

// cloneMap copies m whole (maps.Clone copies its table, rather than
// inserting every entry again); a nil map becomes an empty one.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}

// ObservedState is a resource's normalized, secret-free observed summary
// ([Plan.Observed]) and its hash.
type ObservedState struct {
	Hash   string            `json:"hash"`
	Fields map[string]string `json:"fields,omitempty"`
}

// NewObservedState hashes fields into an ObservedState.
func NewObservedState(fields map[string]string) ObservedState {
	return ObservedState{Hash: HashObserved(fields), Fields: fields}
}

// maxRememberedField is the longest observed field value the node's
// memory keeps as it is; a longer one is kept as its digest. The hash of
// the whole observed state, which is what tells drift, is kept either
// way.
const maxRememberedField = 1024

// compact returns the observed state as the node's memory keeps it: the
// same hash, and every field longer than maxRememberedField replaced by
// "sha256:<hex>" of its value, so that no kind's summary can make the
// state file carry content.
func (o ObservedState) compact() ObservedState {
	var fields map[string]string
	for k, v := range o.Fields {
		if len(v) <= maxRememberedField {
			continue
		}
		if fields == nil {
			fields = make(map[string]string, len(o.Fields))
			for k, v := range o.Fields {
				fields[k] = v
			}
		}
		sum := sha256.Sum256([]byte(v))
		fields[k] = "sha256:" + hex.EncodeToString(sum[:])
	}
	if fields == nil {
		return o
	}
	return ObservedState{Hash: o.Hash, Fields: fields}
}

// HashObserved returns "sha256:<hex>" of the fields in a canonical form
// (JSON with sorted keys), so that equal summaries hash equally whatever
// the order in which a kind filled them.
//
// The canonical form is what json.Marshal makes of the map (hashes are
// kept in state files, so it must not change), written here without
// reflection: every resource of every run is hashed.
// TestHashObservedIsJSON and FuzzHashObserved hold the two equal.
func HashObserved(fields map[string]string) string {
	// Summaries are a few short fields: their keys and JSON fit on the
	// stack.
	var keyBuf [16]string
	var jsonBuf [512]byte
	keys := keyBuf[:0]
	n := 2
	for k, v := range fields {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := jsonBuf[:0]
	if n > len(jsonBuf) {
		b = make([]byte, 0, n)
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, fields[k])
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	var out [len("sha256:") + 2*sha256.Size]byte
	copy(out[:], "sha256:")
	hex.Encode(out[len("sha256:"):], sum[:])
	return string(out[:])
}

// appendJSONString appends s as encoding/json writes a string: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// SameDesired reports whether two resources describe the same desired
// state: same ID, edges, mode, destroy switch and spec (compared as compact
// JSON, so that formatting does not count).
func SameDesired(a, b *Resource) bool {
	if a.ID != b.ID || effectiveMode(a.Mode) != effectiveMode(b.Mode) || a.AllowDestroy != b.AllowDestroy ||
		!sameIDs(a.Require, b.Require) || !sameIDs(a.Notify, b.Notify) {
		return false
	}
	return sameJSON(a.Spec, b.Spec)
}

// effectiveMode maps the zero mode to its default, enforce.
func effectiveMode(m Mode) Mode {
	if m == "" {
		return ModeEnforce
	}
	return m
}

func sameIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
