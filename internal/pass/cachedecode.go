package pass

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/reconciler"
)

// decodeCacheFile decodes a cache file as json.Unmarshal does. The form
// CacheFile.Encode writes (fields in order, no white space between them,
// plain strings, each resource as reconciler.CutResource reads it) is read
// without reflection; anything else goes to json.Unmarshal.
// FuzzDecodeCacheFile holds the two equal.
//
// A no-op apply reads the cache file on every run: through json.Unmarshal,
// fetching the cache of 1,000 files (330 KB) took 3.5 ms, 5,215
// allocations and 1.07 MB of fresh memory (7.6 % of the run's CPU); read
// here, 0.6 ms, 2,193 allocations and 0.51 MB, most of it the file's
// bytes (BenchmarkCacheFetch).
//
// The resources' specs are b's own bytes, not copies: b must not change
// after.
func decodeCacheFile(b []byte, cf *CacheFile) error {
	if fastCacheFile(b, cf) {
		return nil
	}
	*cf = CacheFile{}
	return json.Unmarshal(b, cf)
}

// fastCacheFile decodes b into cf if b has the plain form, and reports
// whether it had.
func fastCacheFile(b []byte, cf *CacheFile) bool {
	var out CacheFile
	rest, ok := bytes.CutPrefix(b, []byte(`{"format":`))
	if !ok {
		return false
	}
	if out.Format, rest, ok = plainInt(rest); !ok {
		return false
	}
	for _, f := range [...]struct {
		key string
		to  *string
	}{{`,"key":`, &out.Key}, {`,"build":`, &out.Build}, {`,"node":`, &out.Node}} {
		if rest, ok = plainField(rest, f.key, f.to); !ok {
			return false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"catalog":`)); !ok {
		return false
	}
	if out.Catalog, rest, ok = plainCatalog(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
		return false
	}
	// The encoder's newline, or any white space json.Unmarshal allows.
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return false
	}
	*cf = out
	return true
}

// plainCatalog reads a catalog, as json.Marshal writes it, at the start of
// b.
func plainCatalog(b []byte) (*reconciler.Catalog, []byte, bool) {
	var c reconciler.Catalog
	rest := b
	var ok bool
	for _, f := range [...]struct {
		key string
		to  *string
	}{{`{"site":`, &c.Site}, {`,"node":`, &c.Node}, {`,"role":`, &c.Role}} {
		if rest, ok = plainField(rest, f.key, f.to); !ok {
			return nil, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"revision":`)); ok {
		if c.Revision, rest, ok = jsondoc.PlainString(rest); !ok {
			return nil, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"resources":`)); !ok {
		return nil, nil, false
	}
	if c.Resources, rest, ok = plainResources(rest); !ok {
		return nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"keepCatalogs":`)); ok {
		if c.KeepCatalogs, rest, ok = plainInt(rest); !ok {
			return nil, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"maxHold":`)); ok {
		var v []byte
		if v, rest, ok = jsondoc.CutValue(rest); !ok || !isNumber(v) {
			return nil, nil, false
		}
		// As json.Unmarshal does: the number to the type's own decoder.
		if err := c.MaxHold.UnmarshalJSON(v); err != nil {
			return nil, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"windows":[`)); ok {
		c.Windows = []reconciler.Window{}
		if rest, ok = bytes.CutPrefix(rest, []byte("]")); !ok {
			for {
				var w reconciler.Window
				if w, rest, ok = plainWindow(rest); !ok {
					return nil, nil, false
				}
				c.Windows = append(c.Windows, w)
				if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
					break
				}
			}
			if rest, ok = bytes.CutPrefix(rest, []byte("]")); !ok {
				return nil, nil, false
			}
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
		return nil, nil, false
	}
	return &c, rest, true
}

// plainResources reads the catalog's resources: null, or an array of
// resources as reconciler.CutResource reads them.
func plainResources(b []byte) ([]reconciler.Resource, []byte, bool) {
	if rest, ok := bytes.CutPrefix(b, []byte("null")); ok {
		return nil, rest, true
	}
	rest, ok := bytes.CutPrefix(b, []byte("["))
	if !ok {
		return nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("]")); ok {
		return []reconciler.Resource{}, rest, true
	}
	// Room for every resource at once, where appends would grow the
	// slice ten times for 1,000 (384 KB allocated, not 112 KB; counting
	// takes 33 us): each starts so, and the count is at worst too high (a
	// spec holding the text).
	list := make([]reconciler.Resource, 0, bytes.Count(rest, []byte(`{"id":`)))
	for {
		var r reconciler.Resource
		var like *reconciler.Resource
		if len(list) > 0 {
			like = &list[len(list)-1]
		}
		if r, rest, ok = reconciler.CutResource(rest, like); !ok {
			return nil, nil, false
		}
		list = append(list, r)
		if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
			break
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("]")); !ok {
		return nil, nil, false
	}
	return list, rest, true
}

// plainWindow reads a maintenance window, as json.Marshal writes it, at
// the start of b.
func plainWindow(b []byte) (reconciler.Window, []byte, bool) {
	var w reconciler.Window
	rest, ok := bytes.CutPrefix(b, []byte("{"))
	if !ok {
		return w, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`"days":`)); ok {
		if w.Days, rest, ok = jsondoc.PlainStrings[string](rest, nil); !ok {
			return w, nil, false
		}
		if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
			return w, nil, false
		}
	}
	if rest, ok = plainField(rest, `"start":`, &w.Start); !ok {
		return w, nil, false
	}
	if rest, ok = plainField(rest, `,"end":`, &w.End); !ok {
		return w, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"timezone":`)); ok {
		if w.Timezone, rest, ok = jsondoc.PlainString(rest); !ok {
			return w, nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
		return w, nil, false
	}
	return w, rest, true
}

// plainField reads key (with what comes before it, in the form) and the
// plain string that follows it, into to.
func plainField(b []byte, key string, to *string) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(key))
	if !ok {
		return nil, false
	}
	*to, rest, ok = jsondoc.PlainString(rest)
	return rest, ok
}

// plainInt reads a JSON integer that fits an int at the start of b.
func plainInt(b []byte) (int, []byte, bool) {
	v, rest, ok := jsondoc.CutValue(b)
	if !ok || !isNumber(v) || bytes.ContainsAny(v, ".eE") || len(v) > 18 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, nil, false
	}
	return n, rest, true
}

// isNumber reports whether a value jsondoc.CutValue read is a number.
func isNumber(v []byte) bool {
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}
