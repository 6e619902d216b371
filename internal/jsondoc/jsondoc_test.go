package jsondoc_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
)

func TestSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		json string
	}{
		{0, "0"},
		{224635483, "0.224635483"},
		{5 * time.Second, "5"},
		{1500 * time.Millisecond, "1.5"},
		{-time.Nanosecond, "-0.000000001"},
		{math.MaxInt64, "9223372036.854775807"},
		{math.MinInt64, "-9223372036.854775808"},
	} {
		b, err := json.Marshal(jsondoc.Seconds(c.d))
		if err != nil || string(b) != c.json {
			t.Errorf("marshal %v = %s, %v; want %s", c.d, b, err, c.json)
		}
		var back jsondoc.Seconds
		if err := json.Unmarshal(b, &back); err != nil || back.D() != c.d {
			t.Errorf("unmarshal %s = %v, %v; want %v", b, back.D(), err, c.d)
		}
	}
	for in, want := range map[string]time.Duration{
		"1e-3":          time.Millisecond,
		"2.5E1":         25 * time.Second,
		"0.0000000015":  2 * time.Nanosecond, // rounded half away from zero
		"-0.0000000015": -2 * time.Nanosecond,
		"0.0000000004":  0,
	} {
		var s jsondoc.Seconds
		if err := json.Unmarshal([]byte(in), &s); err != nil || s.D() != want {
			t.Errorf("unmarshal %s = %v, %v; want %v", in, s.D(), err, want)
		}
	}
	for _, in := range []string{`"5s"`, `1e30`, `true`, `{}`} {
		var s jsondoc.Seconds
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("unmarshal %s = %v, want an error", in, s.D())
		}
	}
}

type badText int

func (badText) MarshalText() ([]byte, error) { return []byte("x"), nil }

type badDoc struct {
	Took     time.Duration         `json:"took"`
	At       time.Time             `json:"at"`
	Maybe    *time.Time            `json:"maybe,omitempty"`
	Each     []time.Duration       `json:"each"`
	Class    badText               `json:"class"`
	Any      any                   `json:"any"`
	Nested   struct{ T time.Time } `json:"nested"`
	Hidden   time.Duration         `json:"-"`
	unexp    time.Duration
	Good     time.Time       `json:"good,omitzero"`
	GoodSecs jsondoc.Seconds `json:"goodSecs,omitzero"`
}

func TestCheck(t *testing.T) {
	err := jsondoc.Check(reflectType[badDoc]())
	if err == nil {
		t.Fatal("Check passed a document that breaks every convention")
	}
	msg := err.Error()
	for _, want := range []string{".Took: a time.Duration", ".At: an unset time.Time", ".Maybe: a *time.Time", ".Each[]: a time.Duration",
		".Class: jsondoc_test.badText has MarshalText but no UnmarshalText", ".Any: a field of kind interface", ".Nested.T: an unset"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Check's error does not say %q:\n%s", want, msg)
		}
	}
	for _, not := range []string{"Hidden", "unexp", "Good"} {
		if strings.Contains(msg, not) {
			t.Errorf("Check's error names %s, which is fine:\n%s", not, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 7 {
		t.Errorf("Check found %d problems, want 7:\n%s", n, msg)
	}
}

type goodDoc struct {
	Name   string               `json:"name"`
	Took   jsondoc.Seconds      `json:"took,omitzero"`
	At     time.Time            `json:"at,omitzero"`
	Raw    json.RawMessage      `json:"raw"`
	Kids   []*goodDoc           `json:"kids,omitempty"`
	ByName map[string][]float64 `json:"byName"`
	Embed
}

type Embed struct {
	Count uint16 `json:"count"`
}

func TestRoundTripHelper(t *testing.T) {
	jsondoctest.RoundTrip[goodDoc](t, jsondoctest.Options{})
	b, _ := json.Marshal(goodDoc{})
	if strings.Contains(string(b), `"took"`) || strings.Contains(string(b), `"at"`) {
		t.Errorf("unset fields are written: %s", b)
	}
}

func reflectType[T any]() reflect.Type { return reflect.TypeFor[T]() }
