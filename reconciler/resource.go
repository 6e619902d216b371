package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
)

// ID names a resource: its kind, a colon, and a name unique within the kind,
// as in "file:/etc/my.cnf.d/server.cnf" or "mariadb.user:fs_user@localhost".
type ID string

// NewID joins a kind and a name into an ID.
func NewID(kind, name string) ID { return ID(kind + ":" + name) }

// Kind returns the part of the ID before the first colon.
func (id ID) Kind() string {
	k, _, _ := strings.Cut(string(id), ":")
	return k
}

// Name returns the part of the ID after the first colon.
func (id ID) Name() string {
	_, n, _ := strings.Cut(string(id), ":")
	return n
}

// Valid reports whether the ID has a non-empty kind and name.
func (id ID) Valid() bool {
	k, n, ok := strings.Cut(string(id), ":")
	return ok && k != "" && n != ""
}

// Mode says what the engine does about drift on a resource.
type Mode string

const (
	// ModeEnforce corrects drift (the default).
	ModeEnforce Mode = "enforce"
	// ModeDetect reports drift and changes nothing.
	ModeDetect Mode = "detect"
)

// Resource is one entry of a catalog: the desired state of one thing on the
// node. It is produced by internal/desired from the CUE site and is
// immutable once the catalog is built.
type Resource struct {
	// ID is "kind:name".
	ID ID `json:"id"`
	// Require lists resources that must be applied successfully before this
	// one.
	Require []ID `json:"require,omitempty"`
	// Notify lists resources that run after this one and are refreshed
	// (restarted, reloaded, recreated) when this one changed.
	Notify []ID `json:"notify,omitempty"`
	// Mode is enforce (correct drift) or detect (only report it).
	Mode Mode `json:"mode,omitempty"`
	// AllowDestroy opts this resource in to destructive changes (dropping a
	// database, deleting a data volume). Without it such changes are held as
	// pending destroys and nothing is lost.
	AllowDestroy bool `json:"allowDestroy,omitempty"`
	// Spec holds the kind-specific fields as JSON. Secret values never
	// appear here, only secret references.
	Spec json.RawMessage `json:"spec"`
}

// Kind returns the resource's kind, from its ID.
func (r *Resource) Kind() string { return r.ID.Kind() }

// Name returns the resource's name, from its ID.
func (r *Resource) Name() string { return r.ID.Name() }

// DecodeSpec decodes the resource's spec into v, refusing fields that v does
// not declare, so that a field the schema knows but the Go side does not is
// an error rather than silently dropped. The spec is one JSON value: data
// after it other than white space is an error (a json.Decoder alone would
// ignore it).
func (r *Resource) DecodeSpec(v any) error {
	_, err := newSpecDecoder().decode(r.Spec, v)
	return r.specError(err)
}

// specError wraps an error decoding r's spec.
func (r *Resource) specError(err error) error {
	if err != nil {
		return fmt.Errorf("decode spec of %s: %w", r.ID, err)
	}
	return nil
}

// Catalog is the desired state of one node at one revision.
type Catalog struct {
	// Site is the site's name, Node the node's and Role its role's.
	Site string `json:"site"`
	Node string `json:"node"`
	Role string `json:"role"`
	// Revision identifies what the catalog was built from: a commit hash, or
	// "sha256:<hex>" of the site's files for a directory.
	Revision string `json:"revision,omitempty"`
	// Resources are sorted by ID.
	Resources []Resource `json:"resources"`
	// KeepCatalogs is how many of the node's last applied catalogs keep a
	// resource a rollback needs ([Retainer]) after it left the catalog;
	// zero: [DefaultKeepCatalogs].
	KeepCatalogs int `json:"keepCatalogs,omitempty"`
	// MaxHold is the longest a hold may last on the node (fsgit hold; the
	// site's operations.maxHold); zero: [DefaultMaxHold].
	MaxHold jsondoc.Seconds `json:"maxHold,omitzero"`
	// Windows are the node's maintenance windows (the node's, else its
	// role's, else the site's operations.windows): disruptive changes
	// wait for one. None: they run at any time.
	Windows []Window `json:"windows,omitempty"`
}

// DefaultMaxHold is the longest a hold may last when the site does not
// say.
const DefaultMaxHold = 24 * time.Hour

// Sort orders the resources by ID, which makes every output built from the
// catalog stable.
func (c *Catalog) Sort() {
	sort.Slice(c.Resources, func(i, j int) bool { return c.Resources[i].ID < c.Resources[j].ID })
}

// Lookup returns the resource with the given ID, or nil. It does not
// assume the catalog is sorted.
func (c *Catalog) Lookup(id ID) *Resource {
	for i := range c.Resources {
		if c.Resources[i].ID == id {
			return &c.Resources[i]
		}
	}
	return nil
}

// CutResource reads a resource at the start of b in the form json.Marshal
// writes it (with or without HTML escapes): its fields in order (id, then
// require, notify, mode and allowDestroy when set, and last the spec, an
// object), no white space between them, and plain strings
// ([jsondoc.PlainString]). It returns the resource and what follows; ok
// is false, and r zero, when b does not start with that form, which
// json.Unmarshal then reads (to the same value, where this reads it).
//
// The spec is b's own bytes, not a copy, checked as json.Valid checks
// (jsondoc.CutValue): b must not change after. like, if not nil, is a
// resource read before, the previous one of a catalog: a require or
// notify entry equal to its entry at the same place is its string, not a
// copy (the files of a directory all require it: 1,000 of the 3,155
// allocations of reading the cache of 1,000 files).
func CutResource(b []byte, like *Resource) (r Resource, rest []byte, ok bool) {
	rest, ok = bytes.CutPrefix(b, []byte(`{"id":`))
	if !ok {
		return Resource{}, nil, false
	}
	if like == nil {
		like = &Resource{}
	}
	var out Resource
	id, rest, ok := jsondoc.PlainString(rest)
	if !ok {
		return Resource{}, nil, false
	}
	out.ID = ID(id)
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"require":`)); ok {
		if out.Require, rest, ok = jsondoc.PlainStrings(rest, like.Require); !ok {
			return Resource{}, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"notify":`)); ok {
		if out.Notify, rest, ok = jsondoc.PlainStrings(rest, like.Notify); !ok {
			return Resource{}, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"mode":`)); ok {
		var mode []byte
		if mode, rest, ok = jsondoc.PlainStringBytes(rest); !ok {
			return Resource{}, nil, false
		}
		// The two modes without a copy each: a catalog names one for
		// every resource.
		switch string(mode) {
		case string(ModeEnforce):
			out.Mode = ModeEnforce
		case string(ModeDetect):
			out.Mode = ModeDetect
		default:
			out.Mode = Mode(mode)
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"allowDestroy":true`)); ok {
		out.AllowDestroy = true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"spec":`)); !ok || len(rest) == 0 || rest[0] != '{' {
		return Resource{}, nil, false
	}
	var spec []byte
	if spec, rest, ok = jsondoc.CutValue(rest); !ok {
		return Resource{}, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
		return Resource{}, nil, false
	}
	// Capped at its length: an append to the spec copies it rather than
	// write over what follows in b.
	out.Spec = spec[:len(spec):len(spec)]
	return out, rest, true
}
