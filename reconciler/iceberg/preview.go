package iceberg

import (
	"errors"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"

	"github.com/fsgit/fsgit/reconciler"
)

var (
	_ reconciler.Previewer = (*Namespace)(nil)
	_ reconciler.Previewer = (*Table)(nil)
)

// Preview classes a change of the namespace from the two specs: dropping
// it is destructive, anything else safe.
func (*Namespace) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Destructive, "drop namespace"
	}
	n, err := decodeNamespace(new)
	if err != nil {
		return reconciler.Safe, ""
	}
	if n.Ensure == "absent" {
		return reconciler.Destructive, "drop namespace"
	}
	if old == nil {
		return reconciler.Safe, "create namespace"
	}
	return reconciler.Safe, ""
}

// Preview classes a change of the table from the two specs, by diffing the
// new schema against the one the old spec made: dropping the table or a
// column is destructive; a change Iceberg would refuse is flagged so that
// the reviewer sees it before the node does.
func (*Table) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Destructive, "drop table"
	}
	n, err := DecodeTableSpec(new)
	if err != nil {
		return reconciler.Safe, ""
	}
	if n.Ensure == "absent" {
		return reconciler.Destructive, "drop table"
	}
	if old == nil {
		return reconciler.Safe, "create table"
	}
	o, err := DecodeTableSpec(old)
	if err != nil {
		return reconciler.Safe, ""
	}
	fields := make([]iceberg.NestedField, 0, len(o.Schema.Fields))
	last := 0
	for _, f := range o.Schema.Fields {
		t, err := parseType(f.Type)
		if err != nil {
			return reconciler.Safe, ""
		}
		fields = append(fields, iceberg.NestedField{ID: f.ID, Name: f.Name, Type: t, Required: f.Required, Doc: f.Doc})
		last = max(last, f.ID)
	}
	d, err := diffSchema(n.FullName(), iceberg.NewSchema(0, fields...), last, n.Schema.Fields)
	var re *RefusedError
	if errors.As(err, &re) {
		return reconciler.Safe, "will be refused: " + re.Reason
	}
	if err != nil {
		return reconciler.Safe, ""
	}
	var dropped, effects []string
	for _, c := range d.changes {
		if c.Class == reconciler.Destructive {
			dropped = append(dropped, c.Before)
		}
	}
	if len(dropped) > 0 {
		return reconciler.Destructive, "drop column " + strings.Join(dropped, ", ")
	}
	if len(d.changes) > 0 {
		effects = append(effects, "evolve schema")
	}
	if !slices.Equal(normalizeSpec(o.PartitionSpec), normalizeSpec(n.PartitionSpec)) {
		effects = append(effects, "evolve partition spec")
	}
	return reconciler.Safe, strings.Join(effects, ", ")
}
