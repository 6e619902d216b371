package mariadb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// DatabaseSpec is the spec of a mariadb.database resource.
type DatabaseSpec struct {
	// Name is the database (from the ID).
	Name string `json:"name"`
	// Ensure is present (default) or absent (DROP DATABASE: destructive).
	Ensure reconciler.Ensure `json:"ensure,omitempty"`
	// Charset and Collation are the database defaults; the collation must
	// belong to the charset. Empty: not managed.
	Charset   string `json:"charset,omitempty"`
	Collation string `json:"collation,omitempty"`
	// Server is the endpoint.
	Server Server `json:"server"`
}

// DatabaseKind implements mariadb.database.
type DatabaseKind struct{ k *Kinds }

var (
	_ reconciler.KindOf[DatabaseSpec]     = (*DatabaseKind)(nil)
	_ reconciler.SpecPruner[DatabaseSpec] = (*DatabaseKind)(nil)
	_ reconciler.Previewer                = (*DatabaseKind)(nil)
)

// Kind returns "mariadb.database".
func (*DatabaseKind) Kind() string { return "mariadb.database" }

// Close closes the MariaDB connection pools the kinds share.
func (k *DatabaseKind) Close() error { return k.k.Close() }

// Check checks the spec (no I/O), taking the name from the ID when not
// given, and reads the charset and collation as the server reports them.
func (*DatabaseKind) Check(r *reconciler.Resource, s *DatabaseSpec) error {
	if s.Name == "" {
		s.Name = r.Name()
	}
	if err := s.check(r); err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	s.Charset, s.Collation = normCharset(s.Charset), normCharset(s.Collation)
	return nil
}

func (s *DatabaseSpec) check(r *reconciler.Resource) error {
	if s.Name != r.Name() {
		return fmt.Errorf("name %q differs from the ID's %q", s.Name, r.Name())
	}
	if err := checkIdent("database", s.Name); err != nil {
		return err
	}
	for _, v := range []string{s.Charset, s.Collation} {
		if v != "" && !charsetRE().MatchString(v) {
			return fmt.Errorf("charset or collation %q is not a valid name", v)
		}
	}
	if s.Charset != "" && s.Collation != "" && !strings.HasPrefix(normCharset(s.Collation), normCharset(s.Charset)+"_") {
		return fmt.Errorf("collation %q does not belong to charset %q", s.Collation, s.Charset)
	}
	return s.Server.validate()
}

// normCharset reads the utf8 alias as MariaDB 10.6+ reports it: utf8mb3.
func normCharset(v string) string {
	v = strings.ToLower(v)
	if v == "utf8" {
		return "utf8mb3"
	}
	if strings.HasPrefix(v, "utf8_") {
		return "utf8mb3_" + strings.TrimPrefix(v, "utf8_")
	}
	return v
}

// Preview classes a change without observing: dropping a database is
// destructive, anything else safe.
func (*DatabaseKind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil || absentIn(new) {
		return reconciler.Destructive, "drop database"
	}
	return reconciler.Safe, ""
}

// absentIn reads the ensure field of any mariadb spec, for Preview: true
// when it is absent.
func absentIn(r *reconciler.Resource) bool {
	var s struct {
		Ensure reconciler.Ensure `json:"ensure"`
	}
	_ = json.Unmarshal(r.Spec, &s)
	return s.Ensure.Absent()
}

// Plan observes the database (one SCHEMATA read shared by the run) and
// diffs its existence, charset and collation.
func (k *DatabaseKind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *DatabaseSpec) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	all, err := c.schemata(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	got, exists := all[s.Name]
	p := &reconciler.Plan{Observed: map[string]string{"exists": fmt.Sprint(exists)}}
	if exists {
		p.Observed["charset"], p.Observed["collation"] = got.Charset, got.Collation
	}
	if s.Ensure.Absent() {
		return dropPlan(c, func() { c.forget(env) }, r, "database", "DROP DATABASE "+quoteIdent(s.Name), exists, p), nil
	}
	if !exists {
		p.Action = reconciler.ActionCreate
		p.Changes = append(p.Changes, reconciler.Change{Field: "ensure", Before: "absent", After: "present"})
		stmt := "CREATE DATABASE " + quoteIdent(s.Name) + charsetClause(s.Charset, s.Collation)
		p.Apply = func(ctx context.Context) error {
			defer c.forget(env)
			return c.exec(ctx, r.ID, stmt)
		}
		return p, nil
	}
	var want string
	if s.Charset != "" && s.Charset != got.Charset {
		p.Changes = append(p.Changes, reconciler.Change{Field: "charset", Before: got.Charset, After: s.Charset})
		want = s.Charset
	}
	if s.Collation != "" && s.Collation != got.Collation {
		p.Changes = append(p.Changes, reconciler.Change{Field: "collation", Before: got.Collation, After: s.Collation})
		want = s.Collation
	}
	if want != "" {
		// ALTER DATABASE only changes the default for new tables: safe.
		p.Action = reconciler.ActionUpdate
		stmt := "ALTER DATABASE " + quoteIdent(s.Name) + charsetClause(s.Charset, s.Collation)
		p.Apply = func(ctx context.Context) error {
			defer c.forget(env)
			return c.exec(ctx, r.ID, stmt)
		}
	}
	return p, nil
}

// charsetClause renders the CHARACTER SET / COLLATE options. Both names
// were checked against charsetRE, and are quoted anyway.
func charsetClause(charset, collation string) string {
	var b strings.Builder
	if charset != "" {
		b.WriteString(" CHARACTER SET " + quoteIdent(charset))
	}
	if collation != "" {
		b.WriteString(" COLLATE " + quoteIdent(collation))
	}
	return b.String()
}

// PlanDelete plans DROP DATABASE for a database that left the catalog:
// destructive, so held unless the last applied resource allowed destroy.
func (k *DatabaseKind) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *DatabaseSpec) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	all, err := c.schemata(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	_, exists := all[s.Name]
	return dropPlan(c, func() { c.forget(env) }, r, "database", "DROP DATABASE "+quoteIdent(s.Name), exists, &reconciler.Plan{Observed: map[string]string{"exists": fmt.Sprint(exists)}}), nil
}
