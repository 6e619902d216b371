package jdbc

import (
	"testing"

	icebergo "github.com/apache/iceberg-go"

	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// TestCanonicalType_MatchesIcebergGo: the proxy package reads types
// without iceberg-go; what it accepts, and how it prints it, must be what
// iceberg-go does, or a declared type would not compare equal to the
// observed one.
func TestCanonicalType_MatchesIcebergGo(t *testing.T) {
	for _, s := range []string{"boolean", "int", "long", "float", "double", "date", "time", "timestamp",
		"timestamptz", "timestamp_ns", "timestamptz_ns", "string", "uuid", "binary", "fixed[16]",
		"decimal(10,2)", "decimal( 38 , 0 )", "variant", "varchar", "decimal(0,0)", "decimal(5,6)",
		"fixed[x]", "list<int>", "Long"} {
		got, lerr := iceberg.CanonicalType(s)
		typ, gerr := parseType(s)
		if (lerr == nil) != (gerr == nil) {
			t.Errorf("%q: proxy error %v, iceberg-go error %v", s, lerr, gerr)
			continue
		}
		if gerr == nil && got != typ.String() {
			t.Errorf("%q: proxy prints %q, iceberg-go %q", s, got, typ.String())
		}
	}
	for _, tr := range []string{"identity", "Day", "bucket[16]", "truncate[4]", "void", "hour"} {
		want, err := icebergo.ParseTransform(tr)
		if err != nil {
			t.Fatal(err)
		}
		got := iceberg.NormalizeSpec([]iceberg.PartitionFieldSpec{{Transform: tr}})
		if want.String() == "void" {
			if len(got) != 0 {
				t.Errorf("%q: kept %v", tr, got)
			}
			continue
		}
		if len(got) != 1 || got[0].Transform != want.String() {
			t.Errorf("%q: proxy %v, iceberg-go %q", tr, got, want)
		}
	}
}
