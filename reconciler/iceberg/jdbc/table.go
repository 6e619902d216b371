package jdbc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	icebergo "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// Table is the "iceberg.table" kind: an Iceberg table of a JDBC catalog,
// with its schema, partition spec and declared properties. Properties not
// declared are left alone (Iceberg and Spark set their own), and data
// appends are not drift: only what the spec declares is compared.
type Table struct{ pools pools }

var (
	_ reconciler.Kind   = (*Table)(nil)
	_ reconciler.Pruner = (*Table)(nil)
)

// NewTable returns the iceberg.table kind. Close it to release its catalog
// connections.
func NewTable() *Table { return &Table{} }

// Kind returns "iceberg.table".
func (*Table) Kind() string { return "iceberg.table" }

// Close closes the kind's catalog connections.
func (k *Table) Close() error { return k.pools.close() }

// Validate decodes the spec and checks the catalog, the identifier, the
// schema (unique ids and names, known types) and the partition spec.
func (*Table) Validate(r *reconciler.Resource) error {
	_, err := iceberg.DecodeTableSpec(r)
	return err
}

// Plan loads the table through the catalog and compares it with the spec.
// It reads only. A change Iceberg cannot make compatibly is returned as a
// *RefusedError.
func (k *Table) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, false)
}

// PlanDelete plans dropping a table that left the catalog: destructive. The
// catalog entry goes; the data files stay in the warehouse, as with Spark's
// DROP TABLE without PURGE.
func (k *Table) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, true)
}

// plan loads the table and plans it to the spec, or its drop when absent
// (PlanDelete) or the spec says so.
func (k *Table) plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, absent bool) (*reconciler.Plan, error) {
	s, err := iceberg.DecodeTableSpec(r)
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
	tbl, err := loadTable(ctx, env, c, s.Ident())
	if err != nil {
		return nil, err
	}
	plan := &reconciler.Plan{Observed: tableObserved(tbl, s)}
	switch {
	case absent || s.Ensure == "absent":
		if tbl != nil {
			planDropTable(plan, c, s)
		}
		return plan, nil
	case tbl == nil:
		return plan, planCreateTable(plan, env, c, s)
	}
	return plan, planEvolveTable(plan, tbl, s)
}

// loadTable returns the table, or nil when it (or its namespace, or the
// catalog tables) does not exist.
func loadTable(ctx context.Context, env *reconciler.Env, c *Catalog, ident table.Identifier) (*table.Table, error) {
	ok, err := tablesPresent(ctx, env, c)
	if err != nil || !ok {
		return nil, err
	}
	tbl, err := c.sql.LoadTable(ctx, ident)
	if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load iceberg table %s: %w", strings.Join(ident, "."), err)
	}
	return tbl, nil
}

func planDropTable(plan *reconciler.Plan, c *Catalog, s *iceberg.TableSpec) {
	name := s.FullName()
	ident := s.Ident()
	plan.Action = reconciler.ActionDelete
	plan.Changes = append(plan.Changes, reconciler.Change{Field: "table", Before: name, Class: reconciler.Destructive})
	plan.Apply = func(ctx context.Context) error {
		if err := c.sql.DropTable(ctx, ident); err != nil {
			return fmt.Errorf("drop iceberg table %s: %w", name, err)
		}
		return nil
	}
}

func planCreateTable(plan *reconciler.Plan, env *reconciler.Env, c *Catalog, s *iceberg.TableSpec) error {
	name := s.FullName()
	sc, err := newSchema(name, &s.Schema)
	if err != nil {
		return err
	}
	spec, err := newPartitionSpec(sc, s.PartitionSpec)
	if err != nil {
		return fmt.Errorf("plan iceberg table %s: %w", name, err)
	}
	plan.Action = reconciler.ActionCreate
	plan.Changes = append(plan.Changes,
		reconciler.Change{Field: "table", After: name, Class: reconciler.Safe},
		reconciler.Change{Field: "schema", After: schemaString(sc), Class: reconciler.Safe},
		reconciler.Change{Field: "partitionSpec", After: iceberg.SpecString(iceberg.NormalizeSpec(s.PartitionSpec)), Class: reconciler.Safe})
	for _, key := range slices.Sorted(maps.Keys(s.Properties)) {
		plan.Changes = append(plan.Changes, reconciler.Change{Field: "properties." + key, After: s.Properties[key], Class: reconciler.Safe})
	}
	props := icebergo.Properties(maps.Clone(s.Properties))
	ident := s.Ident()
	plan.Apply = func(ctx context.Context) error {
		if err := ensureTables(ctx, env, c); err != nil {
			return err
		}
		if _, err := c.sql.CreateTable(ctx, ident, sc, catalog.WithPartitionSpec(spec), catalog.WithProperties(props)); err != nil {
			return fmt.Errorf("create iceberg table %s: %w", name, err)
		}
		return nil
	}
	return nil
}

// planEvolveTable diffs an existing table and plans one transaction that
// evolves its schema and partition spec and sets its properties.
func planEvolveTable(plan *reconciler.Plan, tbl *table.Table, s *iceberg.TableSpec) error {
	name := s.FullName()
	md := tbl.Metadata()
	sd, err := diffSchema(name, tbl.Schema(), md.LastColumnID(), s.Schema.Fields)
	if err != nil {
		return err
	}
	plan.Changes = append(plan.Changes, sd.changes...)

	curSpec, wantSpec := currentSpec(md), iceberg.NormalizeSpec(s.PartitionSpec)
	specChanged := !slices.Equal(curSpec, wantSpec)
	if specChanged {
		// Partition evolution is metadata only: files keep the spec they
		// were written with, new data gets the new one.
		plan.Changes = append(plan.Changes, reconciler.Change{Field: "partitionSpec", Before: iceberg.SpecString(curSpec), After: iceberg.SpecString(wantSpec), Class: reconciler.Safe})
	}

	props := icebergo.Properties{}
	upgradeTo := 0
	for _, key := range slices.Sorted(maps.Keys(s.Properties)) {
		want := s.Properties[key]
		if key == iceberg.PropertyFormatVersion {
			w, _ := strconv.Atoi(want)
			switch {
			case w < md.Version():
				return &iceberg.RefusedError{Table: name, Field: "properties.format-version",
					Reason: fmt.Sprintf("the table is at format version %d and Iceberg cannot downgrade it to %d", md.Version(), w)}
			case w > md.Version():
				upgradeTo = w
				plan.Changes = append(plan.Changes, reconciler.Change{Field: "properties." + key, Before: strconv.Itoa(md.Version()), After: want, Class: reconciler.Safe})
			}
			continue
		}
		if have, ok := md.Properties()[key]; !ok || have != want {
			props[key] = want
			plan.Changes = append(plan.Changes, reconciler.Change{Field: "properties." + key, Before: have, After: want, Class: reconciler.Safe})
		}
	}
	if len(plan.Changes) == 0 {
		return nil
	}
	plan.Action = reconciler.ActionUpdate
	plan.Apply = func(ctx context.Context) error {
		txn := tbl.NewTransaction()
		if upgradeTo > 0 {
			if err := txn.UpgradeFormatVersion(upgradeTo); err != nil {
				return fmt.Errorf("upgrade iceberg table %s to format version %d: %w", name, upgradeTo, err)
			}
		}
		if len(sd.ops) > 0 {
			us := txn.UpdateSchema(true, false)
			for _, op := range sd.ops {
				op(us)
			}
			if err := us.Commit(); err != nil {
				return fmt.Errorf("evolve the schema of iceberg table %s: %w", name, err)
			}
		}
		if specChanged {
			if err := evolveSpec(txn, curSpec, wantSpec, s.Schema.Fields); err != nil {
				return fmt.Errorf("evolve the partition spec of iceberg table %s: %w", name, err)
			}
		}
		if len(props) > 0 {
			if err := txn.SetProperties(props); err != nil {
				return fmt.Errorf("set properties of iceberg table %s: %w", name, err)
			}
		}
		out, err := txn.Commit(ctx)
		if err != nil {
			return fmt.Errorf("commit changes to iceberg table %s: %w", name, err)
		}
		for _, a := range sd.added {
			if f, ok := out.Schema().FindFieldByName(a.Name); !ok || f.ID != a.ID {
				return fmt.Errorf("iceberg table %s: new column %q got field id %d, declared %d", name, a.Name, f.ID, a.ID)
			}
		}
		return nil
	}
	return nil
}

// evolveSpec removes the partition fields that are no longer declared and
// adds the new ones, by (source, transform, name).
func evolveSpec(txn *table.Transaction, cur, want []iceberg.PartitionFieldSpec, fields []iceberg.FieldSpec) error {
	names := map[int]string{}
	for _, f := range fields {
		names[f.ID] = f.Name
	}
	us := txn.UpdateSpec(true)
	for _, c := range cur {
		if !slices.Contains(want, c) {
			us.RemoveField(c.Name)
		}
	}
	for _, w := range want {
		if slices.Contains(cur, w) {
			continue
		}
		tr, err := icebergo.ParseTransform(w.Transform)
		if err != nil {
			return err
		}
		us.AddField(names[w.SourceID], tr, w.Name)
	}
	return us.Commit()
}

// tableObserved summarizes the table for the node's state: what the spec
// declares, never snapshots (data appends are not drift).
func tableObserved(tbl *table.Table, s *iceberg.TableSpec) map[string]string {
	if tbl == nil {
		return map[string]string{"exists": "false"}
	}
	md := tbl.Metadata()
	o := map[string]string{
		"exists":        "true",
		"schema":        schemaString(tbl.Schema()),
		"partitionSpec": iceberg.SpecString(currentSpec(md)),
		"formatVersion": strconv.Itoa(md.Version()),
		"location":      md.Location(),
	}
	for k := range s.Properties {
		if v, ok := md.Properties()[k]; ok {
			o["properties."+k] = v
		}
	}
	return o
}
