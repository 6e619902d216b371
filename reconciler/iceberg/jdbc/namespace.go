package jdbc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	icebergo "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// Namespace is the "iceberg.namespace" kind: a namespace of a JDBC catalog
// with the properties it declares. Properties not declared are left alone
// (Spark and Iceberg add their own).
type Namespace struct{ pools pools }

var (
	_ reconciler.Kind   = (*Namespace)(nil)
	_ reconciler.Pruner = (*Namespace)(nil)
)

// NewNamespace returns the iceberg.namespace kind. Close it to release its
// catalog connections.
func NewNamespace() *Namespace { return &Namespace{} }

// Kind returns "iceberg.namespace".
func (*Namespace) Kind() string { return "iceberg.namespace" }

// Close closes the kind's catalog connections.
func (k *Namespace) Close() error { return k.pools.close() }

// Validate decodes the spec and checks the catalog, the namespace levels,
// and that the ID names the namespace.
func (*Namespace) Validate(r *reconciler.Resource) error {
	_, err := iceberg.DecodeNamespaceSpec(r)
	return err
}

// Plan observes the namespace and its declared properties. It reads only.
func (k *Namespace) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, false)
}

// PlanDelete plans dropping a namespace that left the catalog. Iceberg
// refuses to drop a namespace that still holds tables.
func (k *Namespace) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, true)
}

// plan observes the namespace and plans it to the spec, or its drop when
// absent (PlanDelete) or the spec says so.
func (k *Namespace) plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, absent bool) (*reconciler.Plan, error) {
	s, err := iceberg.DecodeNamespaceSpec(r)
	if err != nil {
		return nil, err
	}
	if !absent && s.Ensure != "absent" {
		if err := iceberg.CheckLocations(env.Root, s.Properties); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
	}
	c, err := k.pools.get(ctx, env, s.Catalog)
	if err != nil {
		return nil, err
	}
	if bp, err := planBrokenCatalog(ctx, env, c, r.AllowDestroy, func(ctx context.Context) (*reconciler.Plan, error) {
		return k.plan(ctx, env, r, absent)
	}); bp != nil || err != nil {
		return bp, err
	}
	ident := table.Identifier(s.Namespace)
	exists, props, err := observeNamespace(ctx, env, c, ident)
	if err != nil {
		return nil, err
	}
	plan := &reconciler.Plan{Observed: namespaceObserved(exists, props, s.Properties)}
	name := strings.Join(s.Namespace, ".")

	if absent || s.Ensure == "absent" {
		if exists {
			planDropNamespace(plan, c, ident, name)
		}
		return plan, nil
	}
	if !exists {
		plan.Action = reconciler.ActionCreate
		plan.Changes = append(plan.Changes, reconciler.Change{Field: "namespace", After: name, Class: reconciler.Safe})
		for _, key := range slices.Sorted(maps.Keys(s.Properties)) {
			plan.Changes = append(plan.Changes, reconciler.Change{Field: "properties." + key, After: s.Properties[key], Class: reconciler.Safe})
		}
		want := maps.Clone(s.Properties)
		plan.Apply = func(ctx context.Context) error {
			if err := ensureTables(ctx, env, c); err != nil {
				return err
			}
			if err := c.sql.CreateNamespace(ctx, ident, want); err != nil {
				return fmt.Errorf("create namespace %s in catalog %s: %w", name, s.Catalog.Name, err)
			}
			return nil
		}
		return plan, nil
	}
	updates := icebergo.Properties{}
	for _, key := range slices.Sorted(maps.Keys(s.Properties)) {
		want := s.Properties[key]
		if have, ok := props[key]; !ok || have != want {
			updates[key] = want
			plan.Changes = append(plan.Changes, reconciler.Change{Field: "properties." + key, Before: props[key], After: want, Class: reconciler.Safe})
		}
	}
	if len(updates) > 0 {
		plan.Action = reconciler.ActionUpdate
		plan.Apply = func(ctx context.Context) error {
			if _, err := c.sql.UpdateNamespaceProperties(ctx, ident, nil, updates); err != nil {
				return fmt.Errorf("update properties of namespace %s: %w", name, err)
			}
			return nil
		}
	}
	return plan, nil
}

func planDropNamespace(plan *reconciler.Plan, c *Catalog, ident table.Identifier, name string) {
	plan.Action = reconciler.ActionDelete
	plan.Changes = append(plan.Changes, reconciler.Change{Field: "namespace", Before: name, Class: reconciler.Destructive})
	plan.Apply = func(ctx context.Context) error {
		if err := c.sql.DropNamespace(ctx, ident); err != nil {
			return fmt.Errorf("drop namespace %s: %w", name, err)
		}
		return nil
	}
}

// observeNamespace reads whether the namespace exists and its properties.
func observeNamespace(ctx context.Context, env *reconciler.Env, c *Catalog, ident table.Identifier) (bool, icebergo.Properties, error) {
	ok, err := tablesPresent(ctx, env, c)
	if err != nil || !ok {
		return false, nil, err
	}
	exists, err := c.sql.CheckNamespaceExists(ctx, ident)
	if err != nil {
		return false, nil, fmt.Errorf("look up namespace %s: %w", strings.Join(ident, "."), err)
	}
	if !exists {
		return false, nil, nil
	}
	props, err := c.sql.LoadNamespaceProperties(ctx, ident)
	if errors.Is(err, catalog.ErrNoSuchNamespace) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("load properties of namespace %s: %w", strings.Join(ident, "."), err)
	}
	return true, props, nil
}

// namespaceObserved summarizes what was seen: existence and the declared
// properties' values (others are not ours).
func namespaceObserved(exists bool, have icebergo.Properties, want map[string]string) map[string]string {
	o := map[string]string{"exists": fmt.Sprint(exists)}
	for k := range want {
		if v, ok := have[k]; ok {
			o["properties."+k] = v
		}
	}
	return o
}
