package jsondoc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// valueSeeds are JSON values and near misses.
var valueSeeds = []string{
	`{}`, `[]`, `{"a":1}`, `{ "a" : [ 1 , 2.5e-3 , -0 , true , false , null ] }`,
	`{"content":"# managed\nid = 1\n","mode":"0644"}`,
	`"a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D"`, `"` + "\xff\xfe" + `"`, `"a` + "\x01" + `"`,
	`"\x"`, `"\u12"`, `"\u12G4"`, `"abc`, `"abcdefghijklmnopq\"rstuvwxyz"`,
	`0`, `-`, `-0.`, `01`, `1.5E+10`, `1e`, `1.e5`, `.5`, `tru`, `nul`, `falsey`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `[1 2]`, `{"a":1}}`, `{"a":1} `, ` {}`,
	strings.Repeat("[", 300) + strings.Repeat("]", 300), " \t\r\n{}\n", "\n", "",
	"{\"a\":\"\u2028\"}", `{"a":"<&>"}`,
}

// checkValue: CutValue takes a prefix of b that json.Valid accepts, and
// takes all of b whenever json.Valid accepts b (but for white space
// around it and nesting deeper than maxPlainDepth); Valid is json.Valid.
// A string it takes whole, PlainString takes as json.Unmarshal reads it,
// or leaves.
func checkValue(t *testing.T, b []byte) {
	t.Helper()
	v, rest, ok := CutValue(b)
	if ok && (!json.Valid(v) || !bytes.Equal(v, b[:len(v)]) || !bytes.Equal(rest, b[len(v):])) {
		t.Fatalf("%q: CutValue takes %q, leaving %q", b, v, rest)
	}
	whole := ok && len(rest) == 0
	deep := bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) > maxPlainDepth
	if json.Valid(b) && !whole && !deep && len(bytes.TrimLeft(b, " \t\r\n")) == len(b) && len(bytes.TrimRight(b, " \t\r\n")) == len(b) {
		t.Fatalf("%q: valid, but CutValue gives ok=%v, leaving %q", b, ok, rest)
	}
	if Valid(b) != json.Valid(b) {
		t.Fatalf("%q: Valid says %v, json.Valid the opposite", b, Valid(b))
	}
	if s, rest, ok := PlainString(b); ok {
		var want string
		if err := json.Unmarshal(b[:len(b)-len(rest)], &want); err != nil || s != want {
			t.Fatalf("%q: PlainString gives %q, json.Unmarshal %q (%v)", b, s, want, err)
		}
	}
}

func TestCutValue(t *testing.T) {
	for _, s := range valueSeeds {
		checkValue(t, []byte(s))
	}
	if _, _, ok := CutValue([]byte(strings.Repeat("[", 300) + strings.Repeat("]", 300))); ok {
		t.Error("nesting deeper than maxPlainDepth is read")
	}
	v, rest, ok := CutValue([]byte(`{"a":[1,{"b":"}"}]},"next"`))
	if !ok || string(v) != `{"a":[1,{"b":"}"}]}` || string(rest) != `,"next"` {
		t.Errorf("CutValue: %q, %q, %v", v, rest, ok)
	}
}

// FuzzCutValue: go test -fuzz FuzzCutValue ./internal/jsondoc.
func FuzzCutValue(f *testing.F) {
	for _, s := range valueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkValue(t, b) })
}

// TestStringStops: the table marks exactly the control characters, the
// quote and the backslash, for all 256 bytes.
func TestStringStops(t *testing.T) {
	if len(stringStops) != 256 {
		t.Fatalf("stringStops has %d entries, want 256", len(stringStops))
	}
	for c := 0; c < 256; c++ {
		want := c < 0x20 || c == '"' || c == '\\'
		if got := stringStops[c] == '1'; got != want {
			t.Errorf("byte %#x: stop %t, want %t", c, got, want)
		}
	}
}
