package iceberg

import (
	"errors"
	"slices"
	"strings"

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
	n, err := DecodeNamespaceSpec(new)
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
	// The old spec's columns, as the table it made would show them.
	last := 0
	cur := make([]FieldSpec, len(o.Schema.Fields))
	for i, f := range o.Schema.Fields {
		t, err := parseType(f.Type)
		if err != nil {
			return reconciler.Safe, ""
		}
		f.Type = t.str
		cur[i] = f
		last = max(last, f.ID)
	}
	d, err := DiffFields(n.FullName(), cur, last, n.Schema.Fields)
	var re *RefusedError
	if errors.As(err, &re) {
		return reconciler.Safe, "will be refused: " + re.Reason
	}
	if err != nil {
		return reconciler.Safe, ""
	}
	var dropped, effects []string
	for _, c := range d.Changes {
		if c.Class == reconciler.Destructive {
			dropped = append(dropped, c.Before)
		}
	}
	if len(dropped) > 0 {
		return reconciler.Destructive, "drop column " + strings.Join(dropped, ", ")
	}
	if len(d.Changes) > 0 {
		effects = append(effects, "evolve schema")
	}
	if !slices.Equal(NormalizeSpec(o.PartitionSpec), NormalizeSpec(n.PartitionSpec)) {
		effects = append(effects, "evolve partition spec")
	}
	return reconciler.Safe, strings.Join(effects, ", ")
}
