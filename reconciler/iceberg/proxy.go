package iceberg

import (
	"context"
	"fmt"

	"github.com/fsgit/fsgit/reconciler"
)

// Namespace is the "iceberg.namespace" kind: a namespace of a JDBC catalog
// with the properties it declares. Properties not declared are left alone
// (Spark and Iceberg add their own). It validates and previews here and
// plans and applies through the fsgit-iceberg helper.
type Namespace struct{}

// Table is the "iceberg.table" kind: an Iceberg table of a JDBC catalog,
// with its schema, partition spec and declared properties. Properties not
// declared are left alone (Iceberg and Spark set their own), and data
// appends are not drift: only what the spec declares is compared. It
// validates and previews here and plans and applies through the
// fsgit-iceberg helper.
type Table struct{}

var (
	_ reconciler.KindOf[NamespaceSpec]     = (*Namespace)(nil)
	_ reconciler.SpecPruner[NamespaceSpec] = (*Namespace)(nil)
	_ reconciler.KindOf[TableSpec]         = (*Table)(nil)
	_ reconciler.SpecPruner[TableSpec]     = (*Table)(nil)
)

// NewNamespace returns the iceberg.namespace kind.
func NewNamespace() *reconciler.Typed[NamespaceSpec] { return reconciler.NewTyped(&Namespace{}) }

// NewTable returns the iceberg.table kind.
func NewTable() *reconciler.Typed[TableSpec] { return reconciler.NewTyped(&Table{}) }

// Kinds returns the iceberg.namespace and iceberg.table kinds.
func Kinds() []reconciler.Kind { return []reconciler.Kind{NewNamespace(), NewTable()} }

// Kind returns "iceberg.namespace".
func (*Namespace) Kind() string { return "iceberg.namespace" }

// Plan observes the namespace and its declared properties through the
// helper. It reads only.
func (*Namespace) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *NamespaceSpec) (*reconciler.Plan, error) {
	return remotePlan(ctx, env, r, s.Catalog, OpPlan, OpApply)
}

// PlanDelete plans dropping a namespace that left the catalog. Iceberg
// refuses to drop a namespace that still holds tables.
func (*Namespace) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *NamespaceSpec) (*reconciler.Plan, error) {
	return remotePlan(ctx, env, r, s.Catalog, OpPlanDelete, OpApplyDelete)
}

// Kind returns "iceberg.table".
func (*Table) Kind() string { return "iceberg.table" }

// Plan loads the table through the helper and compares it with the spec.
// It reads only. A change Iceberg cannot make compatibly is returned as a
// *RefusedError.
func (*Table) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *TableSpec) (*reconciler.Plan, error) {
	return remotePlan(ctx, env, r, s.Catalog, OpPlan, OpApply)
}

// PlanDelete plans dropping a table that left the catalog: destructive. The
// catalog entry goes; the data files stay in the warehouse, as with Spark's
// DROP TABLE without PURGE.
func (*Table) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *TableSpec) (*reconciler.Plan, error) {
	return remotePlan(ctx, env, r, s.Catalog, OpPlanDelete, OpApplyDelete)
}

// CatalogSecrets resolves the secrets a catalog names (its password) for a
// request: observing a catalog needs a login, so this happens when
// planning too.
func CatalogSecrets(ctx context.Context, res reconciler.SecretResolver, c CatalogSpec) (map[string]string, error) {
	if res == nil {
		return nil, fmt.Errorf("resolve the catalog password (%s): no secret provider", c.DB.Password)
	}
	pw, err := res.Resolve(ctx, c.DB.Password)
	if err != nil {
		return nil, fmt.Errorf("resolve the catalog password: %w", err)
	}
	return map[string]string{c.DB.Password.Secret: string(pw.Reveal())}, nil
}

// remotePlan plans r in the helper with op, and returns a plan whose Apply
// runs the helper again with applyOp (which plans again and applies).
func remotePlan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, cat CatalogSpec, op, applyOp string) (*reconciler.Plan, error) {
	secrets, err := CatalogSecrets(ctx, env.Secrets, cat)
	if err != nil {
		return nil, err
	}
	req := Request{Op: op, Resource: r, Root: env.Root, Noop: env.Noop, Secrets: secrets}
	resp, err := Call(ctx, &req, env.Log)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error.Err()
	}
	if resp.Plan == nil {
		return nil, fmt.Errorf("%s %s %s: no plan in the response", Executable, op, r.ID)
	}
	plan, err := resp.Plan.Plan()
	if err != nil {
		return nil, err
	}
	if plan.HasChanges() {
		log := env.Log
		plan.Apply = func(ctx context.Context) error {
			areq := req
			areq.Op, areq.Noop = applyOp, false
			resp, err := Call(ctx, &areq, log)
			if err != nil {
				return err
			}
			return resp.Error.Err()
		}
	}
	return plan, nil
}
