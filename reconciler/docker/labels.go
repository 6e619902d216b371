package docker

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// Labels fsgit puts on what it creates. Keys under "fsgit." are fsgit's own
// and are ignored when a spec's labels are compared with an object's.
const (
	// LabelManaged marks every object fsgit created: "true".
	LabelManaged = "fsgit.managed"
	// LabelID holds the resource ID of a managed container.
	LabelID = "fsgit.id"
	// LabelSpecHash holds the hash of the container's normalized spec,
	// with secret values replaced by their references.
	LabelSpecHash = "fsgit.spec-hash"
	// LabelSecretHash holds a salted hash of the resolved secret
	// environment values, so that rotating a secret recreates the
	// container; the value itself is never stored.
	LabelSecretHash = "fsgit.secret-hash"
	// LabelSecretSalt holds the random salt of LabelSecretHash.
	LabelSecretSalt = "fsgit.secret-salt"
)

const fsgitPrefix = "fsgit."

// checkLabels refuses labels in fsgit's own namespace.
func checkLabels(r *reconciler.Resource, l map[string]string) error {
	for k := range l {
		if strings.HasPrefix(k, fsgitPrefix) {
			return fmt.Errorf("validating %s: label %q: keys starting with %q are fsgit's own", r.ID, k, fsgitPrefix)
		}
	}
	return nil
}

// userLabels returns labels without fsgit's own.
func userLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		if !strings.HasPrefix(k, fsgitPrefix) {
			out[k] = v
		}
	}
	return out
}

// withManaged returns a copy of l with the management label.
func withManaged(l map[string]string) map[string]string {
	out := maps.Clone(l)
	if out == nil {
		out = map[string]string{}
	}
	out[LabelManaged] = "true"
	return out
}

// labelChanges lists the differences between desired and observed labels
// (fsgit's own excluded) as changes of the given class.
func labelChanges(desired, observed map[string]string, class reconciler.Class) []reconciler.Change {
	obs := userLabels(observed)
	keys := slices.Sorted(maps.Keys(mergeKeys(desired, obs)))
	var out []reconciler.Change
	for _, k := range keys {
		d, dok := desired[k]
		o, ook := obs[k]
		if dok == ook && d == o {
			continue
		}
		ch := reconciler.Change{Field: "labels." + k, Class: class}
		if ook {
			ch.Before = o
		}
		if dok {
			ch.After = d
		}
		out = append(out, ch)
	}
	return out
}

func mergeKeys(a, b map[string]string) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}
