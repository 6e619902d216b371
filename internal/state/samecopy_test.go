package state

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// TestSameCopy: a copy's file is recognised when it is the content's
// encoding up to the write time, then a write time, the closing brace
// and a newline, however the reads come (one byte at a time, in halves,
// a copy larger than the comparison's buffer); anything else, a byte
// changed anywhere, a file cut short or followed by more, is not.
func TestSameCopy(t *testing.T) {
	inv := map[reconciler.ID]reconciler.Resource{}
	for i := 0; i < 500; i++ { // ~40 KB: more than one buffer
		id := reconciler.ID(fmt.Sprintf("file:/etc/f%03d", i))
		inv[id] = reconciler.Resource{ID: id, Spec: []byte(`{"path":"/etc/f","content":"` + strings.Repeat("x", 40) + `"}`)}
	}
	c := &InventoryCopy{Site: "s", Node: "n", Inventory: inv}
	key := copyKeyOf(c, nil)
	if len(key) <= 32<<10 {
		t.Fatalf("key of %d bytes: the test wants more than one buffer", len(key))
	}
	w := *c
	w.Format, w.Written = inventoryFormat, time.Date(2026, 12, 7, 3, 4, 5, 6, time.UTC)
	file, err := w.encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	file = append(file, '\n')
	i := bytes.LastIndex(key, []byte(writtenField))
	changed := bytes.Clone(file) // a byte past the first buffer
	changed[i-100] ^= 1
	cases := map[string]struct {
		data []byte
		want bool
	}{
		"as written":             {file, true},
		"spaces before newline":  {append(bytes.Clone(file[:len(file)-1]), "  \n"...), true},
		"a byte changed":         {changed, false},
		"no newline":             {file[:len(file)-1], false},
		"more after the newline": {append(bytes.Clone(file), "{}\n"...), false},
		"cut before the time":    {file[:i], false},
		"cut in the middle":      {file[:i/2], false},
		"empty":                  {nil, false},
		"zero time":              {append(bytes.Clone(file[:i]), `"written":"0001-01-01T00:00:00Z"}`+"\n"...), false},
	}
	for name, tc := range cases {
		readers := map[string]func() io.Reader{
			"whole":         func() io.Reader { return bytes.NewReader(tc.data) },
			"one byte each": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(tc.data)) },
			"halves":        func() io.Reader { return iotest.HalfReader(bytes.NewReader(tc.data)) },
		}
		for rname, r := range readers {
			if got := sameCopy(r(), key); got != tc.want {
				t.Errorf("%s (reads: %s): %v, want %v", name, rname, got, tc.want)
			}
		}
	}
	if sameCopy(iotest.ErrReader(fmt.Errorf("disk")), key) {
		t.Error("a read error: the same copy")
	}
}
