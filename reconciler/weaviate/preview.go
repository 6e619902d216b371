package weaviate

import (
	"github.com/fsgit/fsgit/reconciler"
)

var _ reconciler.Previewer = (*Class)(nil)

// Preview classes a change of the class from the two specs: added
// properties and mutable settings are safe; what Weaviate cannot change in
// place, and deleting the class, are destructive.
func (k *Class) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Destructive, "delete class and its objects"
	}
	n, err := reconciler.DecodeAs(k, new)
	if err != nil {
		return reconciler.Safe, ""
	}
	if old == nil {
		return reconciler.Safe, "create class"
	}
	o, err := reconciler.DecodeAs(k, old)
	if err != nil {
		return reconciler.Safe, ""
	}
	if n.Ensure.Absent() && !o.Ensure.Absent() {
		return reconciler.Destructive, "delete class and its objects"
	}
	// Diff the new spec against the class the old spec would have made.
	d := diffClass(n, specAsClass(o))
	switch {
	case d.recreate:
		return reconciler.Destructive, "recreate class (its objects are lost)"
	case len(d.addProps) > 0:
		return reconciler.Safe, "add properties"
	}
	return reconciler.Safe, ""
}

// specAsClass renders a spec the way Weaviate answers GET /v1/schema/{class}
// (for the fields the diff reads).
func specAsClass(s *ClassSpec) map[string]any {
	body := classBody(s)
	props := make([]any, 0, len(s.Properties))
	for _, p := range s.Properties {
		pb := propertyBody(p)
		pb["name"] = propKey(p.Name)
		dt := make([]any, len(p.DataType))
		for i, t := range normType(p.DataType) {
			dt[i] = t
		}
		pb["dataType"] = dt
		props = append(props, pb)
	}
	body["properties"] = props
	return normJSON(body).(map[string]any)
}
