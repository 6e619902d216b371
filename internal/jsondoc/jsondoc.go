// Package jsondoc holds the conventions of the JSON documents fsgit writes
// for machines and reads back (the node status, the run summary, reports,
// plans, caches, the agent's API): a duration is a number of seconds
// ([Seconds]), a time is RFC 3339, and a field that is unset (a zero time or
// duration) is left out (`omitzero`). [Check] finds a document type that
// breaks them, so that a test can hold every document to them. The
// plain-form readers ([PlainString], [CutValue]) read back, without
// reflection, the documents read on every run.
package jsondoc

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Seconds is a duration that JSON shows as a number of seconds, exact to
// the nanosecond ("0.224635483"), where a time.Duration would show an
// integer of nanoseconds.
type Seconds time.Duration

// D returns the value as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

// Seconds returns the duration as a floating-point number of seconds.
func (s Seconds) Seconds() float64 { return time.Duration(s).Seconds() }

// String formats the duration as time.Duration does ("224.635483ms").
func (s Seconds) String() string { return time.Duration(s).String() }

// MarshalJSON writes the number of seconds, in decimal, without trailing
// zeros.
func (s Seconds) MarshalJSON() ([]byte, error) {
	n := int64(s)
	var b []byte
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/1e9, 10)
	if frac := u % 1e9; frac != 0 {
		f := strconv.FormatUint(frac+1e9, 10)[1:] // nine digits, zero-padded
		b = append(b, '.')
		b = append(b, strings.TrimRight(f, "0")...)
	}
	return b, nil
}

// UnmarshalJSON reads a number of seconds (any JSON number, rounded to the
// nanosecond). null leaves the value as it is.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	str := string(b)
	if str == "null" {
		return nil
	}
	if str == "" || str[0] == '"' || str[0] == '{' || str[0] == '[' || str == "true" || str == "false" {
		return fmt.Errorf("duration %s: want a number of seconds", str)
	}
	r, ok := new(big.Rat).SetString(str)
	if !ok {
		return fmt.Errorf("duration %s: want a number of seconds", str)
	}
	r.Mul(r, big.NewRat(1e9, 1))
	// Round half away from zero to a whole number of nanoseconds.
	num, den := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(int64(num.Sign())))
	}
	if !q.IsInt64() {
		return fmt.Errorf("duration %s seconds: out of range", str)
	}
	*s = Seconds(q.Int64())
	return nil
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	secondsType     = reflect.TypeFor[Seconds]()
	marshalerType   = reflect.TypeFor[json.Marshaler]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// Check walks the type of a document, through struct fields, pointers,
// slices, arrays and maps, and returns an error naming every place that
// breaks the conventions:
//
//   - a time.Duration (JSON would show nanoseconds: use [Seconds]);
//   - a time.Time or a Seconds field without omitzero (an unset time would
//     show as 0001-01-01T00:00:00Z), or a pointer to a time (use a time
//     with omitzero);
//   - a type that marshals itself (MarshalJSON, MarshalText) but cannot
//     unmarshal what it wrote, or an interface, a func or a channel that
//     the document could not read back.
//
// Fields tagged json:"-" and unexported fields are not part of the
// document and are not looked at.
func Check(t reflect.Type) error {
	c := &checker{seen: map[reflect.Type]bool{}}
	c.walk(t, t.String(), "")
	return errors.Join(c.errs...)
}

type checker struct {
	seen map[reflect.Type]bool
	errs []error
}

func (c *checker) fail(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// walk checks t, found at path; tag is the json tag of the struct field
// holding it, if any.
func (c *checker) walk(t reflect.Type, path, tag string) {
	switch t {
	case durationType:
		c.fail(path, "a time.Duration shows as nanoseconds: use jsondoc.Seconds")
		return
	case timeType, secondsType:
		if _, opts, _ := strings.Cut(tag, ","); !hasOption(opts, "omitzero") {
			c.fail(path, "an unset %s must be left out: tag it omitzero", t)
		}
		return
	}
	if t.Kind() == reflect.Pointer && t.Elem() == timeType {
		c.fail(path, "a *time.Time can hold a zero time: use a time.Time tagged omitzero")
		return
	}
	pt := reflect.PointerTo(t)
	switch {
	case t.Implements(marshalerType) || pt.Implements(marshalerType):
		if !pt.Implements(unmarshalerType) {
			c.fail(path, "%s has MarshalJSON but no UnmarshalJSON: it cannot be read back", t)
		}
		return
	case t.Implements(textMarshType) || pt.Implements(textMarshType):
		if !pt.Implements(textUnmarshType) && !pt.Implements(unmarshalerType) {
			c.fail(path, "%s has MarshalText but no UnmarshalText: it cannot be read back", t)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		c.walk(t.Elem(), path+"[]", "")
	case reflect.Map:
		c.walk(t.Key(), path+"{key}", "")
		c.walk(t.Elem(), path+"{}", "")
	case reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		c.fail(path, "a field of kind %s cannot be read back from JSON", t.Kind())
	case reflect.Struct:
		if c.seen[t] {
			return
		}
		c.seen[t] = true
		for f := range fields(t) {
			c.walk(f.Type, path+"."+f.Name, f.Tag.Get("json"))
		}
	}
}

// fields yields the struct fields of t that JSON encodes, descending into
// embedded structs as encoding/json does.
func fields(t reflect.Type) func(yield func(reflect.StructField) bool) {
	return func(yield func(reflect.StructField) bool) {
		for _, f := range reflect.VisibleFields(t) {
			tag := f.Tag.Get("json")
			if tag == "-" || len(f.Index) > 1 && !visible(t, f.Index) {
				continue
			}
			if f.Anonymous {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct && tag == "" {
					continue // its fields are visited in its place
				}
			}
			if !f.IsExported() {
				continue
			}
			if !yield(f) {
				return
			}
		}
	}
}

// visible reports whether every struct embedding the field at index is
// itself encoded (not tagged json:"-").
func visible(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := t.Field(i)
		if f.Tag.Get("json") == "-" {
			return false
		}
		t = f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return true
}

func hasOption(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}
