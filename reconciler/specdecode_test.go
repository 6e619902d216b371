package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// specCase is a spec and what decoding it as a valueSpec gives: the value,
// or an error that contains err.
type specCase struct {
	name string
	spec string
	want valueSpec
	err  string
}

var specCases = []specCase{
	{"plain", `{"value":"x","ensure":"absent"}`, valueSpec{Value: "x", Ensure: EnsureAbsent}, ""},
	{"white space around", " \n\t{\"value\": \"y\"}\r\n \t", valueSpec{Value: "y"}, ""},
	{"null", `null`, valueSpec{}, ""},
	{"escaped ensure", `{"ensure":"pres\u0065nt"}`, valueSpec{Ensure: EnsurePresent}, ""},
	{"empty ensure", `{"ensure":""}`, valueSpec{}, ""},
	{"unknown field", `{"value":"x","other":1}`, valueSpec{}, `json: unknown field "other"`},
	{"type error", `{"value":1}`, valueSpec{}, "json: cannot unmarshal number into Go struct field valueSpec.value of type string"},
	{"bad ensure", `{"ensure":"latest"}`, valueSpec{}, `ensure "latest" is neither present nor absent`},
	{"ensure not a string", `{"ensure":1}`, valueSpec{}, "ensure: json: cannot unmarshal number"},
	{"trailing data", `{"value":"x"} x`, valueSpec{}, "data after the JSON value, at offset 14"},
	{"two values", `{"value":"x"}{"value":"y"}`, valueSpec{}, "data after the JSON value, at offset 13"},
	{"two values apart", "{\"value\":\"x\"}\n{\"value\":\"y\"}\n", valueSpec{}, "data after the JSON value, at offset 14"},
	{"empty", ``, valueSpec{}, "EOF"},
	{"white space only", " \n\t ", valueSpec{}, "EOF"},
	{"truncated", `{"value":"x"`, valueSpec{}, "unexpected EOF"},
	{"syntax error", `{"value":}`, valueSpec{}, "invalid character '}' looking for beginning of value"},
	{"syntax error after white space", "\n\n  {\"value\" \"x\"}", valueSpec{}, "invalid character '\"' after object key"},
	// Longer than a read of the decoder's: the rest is read, or left.
	{"long white space after", `{"value":"w"}` + strings.Repeat(" \n", 1500), valueSpec{Value: "w"}, ""},
	{"long value", `{"value":"` + strings.Repeat("v", 5000) + `"}`, valueSpec{Value: strings.Repeat("v", 5000)}, ""},
	{"long data after", `{"value":"w"}` + strings.Repeat(" ", 3000) + "x", valueSpec{}, "data after the JSON value, at offset 3013"},
	{"over the pooled size", `{"value":"` + strings.Repeat("v", maxPooledSpec) + `"}`, valueSpec{Value: strings.Repeat("v", maxPooledSpec)}, ""},
}

// checkSpecCase checks what decoding c's spec gave.
func checkSpecCase(t *testing.T, how string, c specCase, id ID, s *valueSpec, err error) {
	t.Helper()
	if c.err == "" {
		if err != nil {
			t.Errorf("%s: %s: %v", how, c.name, err)
		} else if *s != c.want {
			t.Errorf("%s: %s: got %+v, want %+v", how, c.name, *s, c.want)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: %s: decoded %+v, want an error containing %q", how, c.name, *s, c.err)
		return
	}
	if want := "decode spec of " + string(id) + ": "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.err) {
		t.Errorf("%s: %s: error %q, want %q...%q", how, c.name, err, want, c.err)
	}
}

// TestDecodeSpec_Semantics checks a spec's decoding, one-off
// ([Resource.DecodeSpec]) and by a typed kind, which reuses decoders: the
// same values and the same errors, wrapped with the resource's ID;
// unknown fields and type errors refused; one JSON value and nothing
// after it but white space.
func TestDecodeSpec_Semantics(t *testing.T) {
	k := NewTyped[valueSpec](&valueKind{})
	for _, c := range specCases {
		r := &Resource{ID: "tvalue:" + ID(c.name), Spec: json.RawMessage(c.spec)}
		var s valueSpec
		err := r.DecodeSpec(&s)
		checkSpecCase(t, "DecodeSpec", c, r.ID, &s, err)

		ts, terr := k.Decode(r)
		if ts == nil {
			ts = &valueSpec{}
		}
		checkSpecCase(t, "Typed.Decode", c, r.ID, ts, terr)
		if fmt.Sprint(err) != fmt.Sprint(terr) {
			t.Errorf("%s: DecodeSpec: %v; Typed.Decode: %v", c.name, err, terr)
		}
	}
	r := &Resource{ID: "tvalue:x", Spec: json.RawMessage(`{"value":"x"} x`)}
	if err := r.DecodeSpec(&valueSpec{}); !errors.Is(err, errTrailingData) {
		t.Errorf("trailing data: %v, want errTrailingData", err)
	}
	r.Spec = nil
	if err := r.DecodeSpec(&valueSpec{}); !errors.Is(err, io.EOF) {
		t.Errorf("no spec: %v, want io.EOF", err)
	}
}

// TestSpecDecoder_Reuse runs every case through one decoder, in both
// orders and each followed by a good spec: a decoder that may be reused
// decodes the next spec as a new one would, with the same syntax error
// offsets, and one that may not is replaced, as the pool does. It also
// checks why one is not reused: after trailing data, the decoder's
// stream still holds it.
func TestSpecDecoder_Reuse(t *testing.T) {
	fresh := func(spec string) (valueSpec, error) {
		var s valueSpec
		_, err := newSpecDecoder().decode([]byte(spec), &s)
		return s, err
	}
	d := newSpecDecoder()
	reused := 0
	decode := func(spec string) (valueSpec, error) {
		var s valueSpec
		reuse, err := d.decode([]byte(spec), &s)
		if reuse != (err == nil) {
			t.Errorf("%q: reuse %v after error %v", spec, reuse, err)
		}
		if reuse {
			reused++
		} else {
			d = newSpecDecoder()
		}
		return s, err
	}
	good := specCases[0]
	order := append(append([]specCase(nil), specCases...), specCases...)
	for i, j := len(specCases), len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	for _, c := range order {
		for _, spec := range []string{c.spec, good.spec} {
			want, wantErr := fresh(spec)
			got, err := decode(spec)
			if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("%q after reuse: %+v, %v; new decoder: %+v, %v", spec, got, err, want, wantErr)
			}
			var se, wantSE *json.SyntaxError
			if errors.As(err, &se) && errors.As(wantErr, &wantSE) && se.Offset != wantSE.Offset {
				t.Errorf("%q after reuse: syntax error at offset %d, new decoder: %d", spec, se.Offset, wantSE.Offset)
			}
		}
	}
	if reused < len(order) {
		t.Errorf("decoder reused %d times over %d specs", reused, 2*len(order))
	}

	// A decoder that read a spec with trailing data is not to be reused:
	// the next spec would be read after the rest of the last.
	d = newSpecDecoder()
	if _, err := d.decode([]byte(`{"value":"x"} {"value":"y"}`), &valueSpec{}); err == nil {
		t.Fatal("trailing data accepted")
	}
	var s valueSpec
	if _, err := d.decode([]byte(`{"value":"z"}`), &s); s.Value != "y" || err == nil {
		t.Fatalf("a decoder reused after trailing data: %+v, %v; want the last spec's rest, y, and an error", s, err)
	}
}

// TestTyped_DecodeConcurrently decodes good and bad specs from many
// goroutines through one kind's pool of decoders (run it with -race):
// each gives what a decoder of its own gives.
func TestTyped_DecodeConcurrently(t *testing.T) {
	k := NewTyped[valueSpec](&valueKind{})
	type want struct {
		s   valueSpec
		err string
	}
	var rs []*Resource
	var wants []want
	for i, c := range specCases {
		for j := range 3 {
			spec := c.spec
			if c.err == "" && j > 0 {
				spec = fmt.Sprintf(`{"value":"v%d-%d"}`, i, j)
			}
			r := &Resource{ID: NewID("tvalue", fmt.Sprintf("%d-%d", i, j)), Spec: json.RawMessage(spec)}
			var s valueSpec
			err := r.DecodeSpec(&s)
			if err != nil {
				s = valueSpec{} // Typed.Decode returns no spec
			}
			rs = append(rs, r)
			wants = append(wants, want{s, fmt.Sprint(err)})
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g*31 + n*7) % len(rs)
				s, err := k.Decode(rs[i])
				if s == nil {
					s = &valueSpec{}
				}
				if *s != wants[i].s || fmt.Sprint(err) != wants[i].err {
					t.Errorf("%s: %+v, %v; want %+v, %s", rs[i].ID, *s, err, wants[i].s, wants[i].err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSpecDecoders_KeepsNoLargeBuffer checks that a decoder that read a
// spec over maxPooledSpec does not go back to the pool, nor one that
// failed.
func TestSpecDecoders_KeepsNoLargeBuffer(t *testing.T) {
	var p specDecoders
	var s valueSpec
	if err := p.decode([]byte(`{"value":"`+strings.Repeat("v", maxPooledSpec)+`"}`), &s); err != nil {
		t.Fatal(err)
	}
	if d := p.pool.Get(); d != nil {
		t.Error("a decoder that read a spec over maxPooledSpec went back to the pool")
	}
	if err := p.decode([]byte(`{"value":1}`), &s); err == nil {
		t.Fatal("type error accepted")
	}
	if d := p.pool.Get(); d != nil {
		t.Error("a decoder that failed went back to the pool")
	}
}
