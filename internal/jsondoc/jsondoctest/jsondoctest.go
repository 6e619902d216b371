// Package jsondoctest tests JSON documents: [Fill] gives every field of a
// value, nested ones included, a random value that is not the zero value,
// and [RoundTrip] checks, over many such values, that a document type reads
// back exactly what it wrote and keeps the [jsondoc] conventions. A field
// added to a document is filled and compared without touching the test.
package jsondoctest

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
)

// Generators make values of the types that random bytes would not do for:
// an enumeration, a type with its own text form. The function returns a
// value of the key's type.
type Generators map[reflect.Type]func(r *rand.Rand) any

// OneOf returns a generator picking one of values.
func OneOf[T any](values ...T) func(r *rand.Rand) any {
	return func(r *rand.Rand) any { return values[r.IntN(len(values))] }
}

// Fill sets every exported field of the value v points to that JSON
// encodes (not tagged json:"-"), recursively, to a random non-zero value:
// pointers are allocated, slices and maps hold one to three elements. It
// fails the test on a type it cannot fill: an interface, a func, a channel,
// or a type with its own JSON or text form that gens has no generator for.
func Fill(t testing.TB, v any, r *rand.Rand, gens Generators) {
	t.Helper()
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		t.Fatalf("Fill needs a non-nil pointer, got %T", v)
	}
	f := &filler{r: r, gens: gens}
	f.fill(rv.Elem(), rv.Elem().Type().String(), 0)
	for _, e := range f.errs {
		t.Error(e)
	}
	if len(f.errs) > 0 {
		t.FailNow()
	}
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	secondsType     = reflect.TypeFor[jsondoc.Seconds]()
	rawType         = reflect.TypeFor[json.RawMessage]()
	marshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalType = reflect.TypeFor[encoding.TextMarshaler]()
)

type filler struct {
	r    *rand.Rand
	gens Generators
	errs []error
}

// maxDepth stops recursive types (a tree of nodes) from growing forever.
const maxDepth = 12

func (f *filler) fill(v reflect.Value, path string, depth int) {
	t := v.Type()
	if g, ok := f.gens[t]; ok {
		v.Set(reflect.ValueOf(g(f.r)))
		return
	}
	switch t {
	case timeType:
		// Any instant from 1970 to 2100, to the nanosecond, in UTC.
		v.Set(reflect.ValueOf(time.Unix(f.r.Int64N(4102444800)+1, f.r.Int64N(1e9)).UTC()))
		return
	case secondsType:
		v.SetInt(f.nonZero())
		return
	case rawType:
		v.SetBytes(fmt.Appendf(nil, `{"k%d":[%d,"v%d",true,null]}`, f.r.IntN(1000), f.r.Int64()-f.r.Int64(), f.r.IntN(1000)))
		return
	}
	if depth > maxDepth {
		return // left zero: a recursive type stops here
	}
	pt := reflect.PointerTo(t)
	if t.Kind() != reflect.Pointer && (pt.Implements(marshalerType) || pt.Implements(textMarshalType)) {
		f.errs = append(f.errs, fmt.Errorf("%s: %s has its own JSON or text form: give Fill a generator for it", path, t))
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := f.nonZero() >> (64 - t.Bits())
		if n == 0 {
			n = 1
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(f.r.Uint64()>>(64-t.Bits()) | 1)
	case reflect.Float32:
		v.SetFloat(float64(float32(f.r.NormFloat64()*1e3 + 0.5)))
	case reflect.Float64:
		v.SetFloat(f.r.NormFloat64()*1e6 + 0.5)
	case reflect.String:
		v.SetString(f.text())
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		f.fill(p.Elem(), path, depth+1)
		v.Set(p)
	case reflect.Slice:
		n := 1 + f.r.IntN(3)
		s := reflect.MakeSlice(t, n, n)
		for i := range n {
			f.fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(t)
		for range 1 + f.r.IntN(3) {
			k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			f.fill(k, path+"{key}", depth+1)
			f.fill(e, path+"{}", depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Tag.Get("json") == "-" || (!sf.IsExported() && !sf.Anonymous) {
				continue
			}
			fv := v.Field(i)
			if !fv.CanSet() {
				// An unexported embedded struct: JSON encodes its exported
				// fields, which reflect cannot set through it.
				f.errs = append(f.errs, fmt.Errorf("%s.%s: cannot fill an unexported embedded field", path, sf.Name))
				continue
			}
			f.fill(fv, path+"."+sf.Name, depth+1)
		}
	default:
		f.errs = append(f.errs, fmt.Errorf("%s: cannot fill a %s: JSON cannot read it back", path, t.Kind()))
	}
}

func (f *filler) nonZero() int64 {
	for {
		if n := f.r.Int64() - f.r.Int64(); n != 0 {
			return n
		}
	}
}

// text returns a short string with characters JSON escapes.
func (f *filler) text() string {
	const alphabet = `abcdefghijklmnopqrstuvwxyz0123456789:/._- <>&"\` + "\n\té€😀"
	runes := []rune(alphabet)
	var b strings.Builder
	for range 1 + f.r.IntN(12) {
		b.WriteRune(runes[f.r.IntN(len(runes))])
	}
	return b.String()
}

// Options tune [RoundTrip].
type Options struct {
	// Generators are passed to Fill.
	Generators Generators
	// Values is how many random values to try (default 200).
	Values int
	// Marshal encodes a value (default json.Marshal), for a document
	// written another way (indented, without HTML escapes).
	Marshal func(v any) ([]byte, error)
}

// RoundTrip checks the document type T: it keeps the conventions
// ([jsondoc.Check]); its zero value encodes without a zero time; and for
// many filled values, unmarshalling what was marshalled gives back an
// equal value, and marshalling that gives the same bytes.
func RoundTrip[T any](t *testing.T, opts Options) {
	t.Helper()
	typ := reflect.TypeFor[T]()
	if err := jsondoc.Check(typ); err != nil {
		t.Errorf("%s breaks the JSON conventions:\n%v", typ, err)
	}
	marshal := opts.Marshal
	if marshal == nil {
		marshal = json.Marshal
	}
	var zero T
	b, err := marshal(&zero)
	if err != nil {
		t.Fatalf("marshal the zero %s: %v", typ, err)
	}
	if bytes.Contains(b, []byte("0001-01-01")) {
		t.Errorf("the zero %s shows a zero time: %s", typ, b)
	}
	n := opts.Values
	if n <= 0 {
		n = 200
	}
	for seed := range uint64(n) {
		r := rand.New(rand.NewPCG(seed, 0x6a736f6e))
		var in T
		Fill(t, &in, r, opts.Generators)
		b, err := marshal(&in)
		if err != nil {
			t.Fatalf("seed %d: marshal %s: %v", seed, typ, err)
		}
		var out T
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("seed %d: %s does not read back what it wrote: %v\n%s", seed, typ, err, b)
		}
		if !reflect.DeepEqual(in, out) {
			again, _ := marshal(&out)
			t.Fatalf("seed %d: %s changed through JSON:\nwrote %s\nread  %+v\nwhich writes %s", seed, typ, b, out, again)
		}
		again, err := marshal(&out)
		if err != nil || !bytes.Equal(b, again) {
			t.Fatalf("seed %d: %s writes differently once read back (%v):\n%s\n%s", seed, typ, err, b, again)
		}
	}
}
