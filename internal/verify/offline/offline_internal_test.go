package offline

import (
	"strings"
	"testing"

	iceberggo "github.com/apache/iceberg-go"
)

func TestMapColumns(t *testing.T) {
	str, dbl, ts := iceberggo.PrimitiveTypes.String, iceberggo.PrimitiveTypes.Float64, iceberggo.PrimitiveTypes.TimestampTz
	field := func(id int, name string, typ iceberggo.Type) iceberggo.NestedField {
		return iceberggo.NestedField{ID: id, Name: name, Type: typ}
	}
	cases := []struct {
		name   string
		fields []iceberggo.NestedField
		want   historyColumns
		err    string
	}{
		{"seed spark frame", []iceberggo.NestedField{field(1, "id", str), field(2, "name", str), field(3, "value", dbl), field(4, "ts", ts)},
			historyColumns{entity: "id", feature: "name", value: "value", ts: "ts"}, ""},
		{"long names", []iceberggo.NestedField{field(1, "feature_name", str), field(2, "entity_id", str), field(3, "feature_value", str), field(4, "event_time", iceberggo.PrimitiveTypes.Timestamp)},
			historyColumns{entity: "entity_id", feature: "feature_name", value: "feature_value", ts: "event_time"}, ""},
		{"no time", []iceberggo.NestedField{field(1, "id", str), field(2, "name", str), field(3, "value", dbl)},
			historyColumns{}, "no column for the time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mapColumns(iceberggo.NewSchema(0, tc.fields...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}
