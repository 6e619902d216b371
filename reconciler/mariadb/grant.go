package mariadb

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// GrantSpec is the spec of a mariadb.grant resource (ID
// mariadb.grant:<user>@<host>/<database>.<table>): exactly these
// privileges on one object.
type GrantSpec struct {
	User string `json:"user"`
	Host string `json:"host,omitempty"`
	// Database is a database name, or "*" for global privileges.
	Database string `json:"database"`
	// Table is a table name, or "*" (default) for the whole database.
	Table string `json:"table,omitempty"`
	// Privileges are MariaDB privilege names for the level; ALL
	// PRIVILEGES means every privilege of the level.
	Privileges []string `json:"privileges"`
	// GrantOption adds WITH GRANT OPTION.
	GrantOption bool `json:"grantOption,omitempty"`
	// Ensure is present (default) or absent (revoke everything there).
	Ensure reconciler.Ensure `json:"ensure,omitempty"`
	Server Server            `json:"server"`

	privs privSet
	all   bool
}

// GrantKind implements mariadb.grant.
type GrantKind struct{ k *Kinds }

var (
	_ reconciler.KindOf[GrantSpec]     = (*GrantKind)(nil)
	_ reconciler.SpecPruner[GrantSpec] = (*GrantKind)(nil)
	_ reconciler.Previewer             = (*GrantKind)(nil)
)

// Kind returns "mariadb.grant".
func (*GrantKind) Kind() string { return "mariadb.grant" }

// Close closes the MariaDB connection pools the kinds share.
func (k *GrantKind) Close() error { return k.k.Close() }

// Check checks the spec, privilege names included (no I/O), and
// lower-cases the host.
func (*GrantKind) Check(r *reconciler.Resource, s *GrantSpec) error {
	s.Host = strings.ToLower(s.Host)
	if err := s.check(r); err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	return nil
}

func (s *GrantSpec) check(r *reconciler.Resource) error {
	if err := checkUser(s.User); err != nil {
		return err
	}
	if err := checkHost(s.Host); err != nil {
		return err
	}
	if s.Database != "*" {
		if err := checkIdent("database", s.Database); err != nil {
			return err
		}
	} else if s.Table != "*" {
		return fmt.Errorf("table %q with database \"*\": a global grant has no table", s.Table)
	}
	if s.Table != "*" {
		if err := checkIdent("table", s.Table); err != nil {
			return err
		}
	}
	if want := s.User + "@" + s.Host + "/" + s.Database + "." + s.Table; !sameGrantID(r.Name(), want) {
		return fmt.Errorf("ID name %q differs from %q", r.Name(), want)
	}
	if len(s.Privileges) == 0 && !s.Ensure.Absent() {
		return fmt.Errorf("privileges: empty (use USAGE for none)")
	}
	var err error
	if s.privs, s.all, err = normalizePrivileges(s.Privileges, s.Database, s.Table); err != nil {
		return err
	}
	return s.Server.validate()
}

// sameGrantID compares an ID name with user@host/db.table, the host part
// without case.
func sameGrantID(name, want string) bool {
	i, j := strings.LastIndex(name, "@"), strings.LastIndex(want, "@")
	if i < 0 || j < 0 || name[:i] != want[:j] {
		return false
	}
	hn, on, _ := strings.Cut(name[i+1:], "/")
	hw, ow, _ := strings.Cut(want[j+1:], "/")
	return strings.EqualFold(hn, hw) && on == ow
}

// Preview: from two versions alone, a grant that loses privileges or goes
// away revokes what the CUE declared, which is safe; only hand-granted
// privileges make a revoke destructive, and that needs observation.
func (*GrantKind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil || absentIn(new) {
		return reconciler.Safe, "revoke"
	}
	return reconciler.Safe, ""
}

func (s *GrantSpec) key() grantKey {
	return grantKey{User: s.User, Host: s.Host, Database: s.Database, Table: s.Table}
}

// Plan observes the account's privileges at this level (one pass over all
// grants, shared by the run, or over this account's, see observation) and
// diffs them as sets.
func (k *GrantKind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *GrantSpec) (*reconciler.Plan, error) {
	if s.Ensure.Absent() {
		return k.plan(ctx, env, r, s, privSet{}, false)
	}
	return k.plan(ctx, env, r, s, s.privs, s.GrantOption)
}

// PlanDelete revokes what a grant that left the catalog holds: safe for
// what the CUE declared on it, destructive for anything granted by hand.
func (k *GrantKind) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *GrantSpec) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, s, privSet{}, false)
}

func (k *GrantKind) plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *GrantSpec, want privSet, wantOpt bool) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	key := s.key()
	who := accountKey{s.User, s.Host}
	all, err := c.accountPrivileges(ctx, env, who, s.Database != "*" && s.Table == "*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	var got grantState
	if g := all.m[key]; g != nil {
		got = *g
	}
	// A database-level grant written without escaping (as fsgit did
	// before, or by hand) is a pattern: `feature_store_online`.* also
	// opens featureXstoreXonline. What it holds is revoked, classed as
	// any revoke: safe for what the CUE declared on this grant.
	wild := s.wildcard(all)

	p := &reconciler.Plan{Observed: map[string]string{
		"privileges":  got.Privs.display(s.Database, s.Table),
		"grantOption": strconv.FormatBool(got.GrantOption),
	}}
	if wild != nil {
		p.Observed["wildcardPrivileges"] = wild.Privs.display(s.Database, s.Table)
	}
	add := want.minus(got.Privs)
	held := got.Privs.minus(want) // held and not wanted: revoked
	addOpt := wantOpt && !got.GrantOption
	dropOpt := !wantOpt && got.GrantOption
	if len(add) == 0 && len(held) == 0 && !addOpt && !dropOpt && wild == nil {
		return p, nil
	}
	// Something changes. What the CUE declared on this grant before
	// classes the revokes and is recorded by the apply; a quiet run does
	// not need it and does not read it.
	hist, err := c.history(ctx, env, s.Server.bookkeeping(), who)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	declared := hist.m[key]
	var revokeSafe, revokeHand []string
	for _, x := range held {
		if declared.Privs.has(x) {
			revokeSafe = append(revokeSafe, x)
		} else {
			revokeHand = append(revokeHand, x)
		}
	}
	if len(add) > 0 {
		after := strings.Join(add, ", ")
		if s.all && len(add) == len(levelPrivileges(s.Database, s.Table)) {
			after = "ALL PRIVILEGES"
		}
		p.Changes = append(p.Changes, reconciler.Change{Field: "grant", After: after})
	}
	if addOpt {
		p.Changes = append(p.Changes, reconciler.Change{Field: "grantOption", Before: "false", After: "true"})
	}
	if len(revokeSafe) > 0 {
		p.Changes = append(p.Changes, reconciler.Change{Field: "revoke", Before: strings.Join(revokeSafe, ", ")})
	}
	if len(revokeHand) > 0 {
		p.Changes = append(p.Changes, reconciler.Change{Field: "revoke (never declared)", Before: strings.Join(revokeHand, ", "), Class: reconciler.Destructive})
	}
	if dropOpt {
		cl := reconciler.Destructive
		if declared.GrantOption {
			cl = reconciler.Safe
		}
		p.Changes = append(p.Changes, reconciler.Change{Field: "grantOption", Before: "true", After: "false", Class: cl})
	}
	var wildRevoke []string
	if wild != nil {
		cl := reconciler.Safe
		wildRevoke = wild.Privs.list()
		for _, x := range wildRevoke {
			if !declared.Privs.has(x) {
				cl = reconciler.Destructive
			}
		}
		before := wild.Privs.display(s.Database, s.Table)
		if wild.GrantOption {
			wildRevoke = append(wildRevoke, "GRANT OPTION")
			before += " WITH GRANT OPTION"
			if !declared.GrantOption {
				cl = reconciler.Destructive
			}
		}
		p.Changes = append(p.Changes, reconciler.Change{
			Field:  "revoke (wildcard " + quoteIdent(s.Database) + ".*, where _ matches any character)",
			Before: before, After: "USAGE", Class: cl,
		})
	}
	if len(p.Changes) == 0 {
		return p, nil
	}
	switch {
	case want.len() == 0 && !wantOpt:
		p.Action = reconciler.ActionDelete
	case got.Privs.len() == 0 && !got.GrantOption:
		p.Action = reconciler.ActionCreate
	default:
		p.Action = reconciler.ActionUpdate
	}

	acct, lvl := account(s.User, s.Host), level(s.Database, s.Table)
	var stmts []string
	if len(add) > 0 || addOpt {
		privs := "USAGE"
		switch {
		case s.all && want.len() > 0:
			privs = "ALL PRIVILEGES"
		case len(add) > 0:
			privs = strings.Join(add, ", ")
		}
		st := "GRANT " + privs + " ON " + lvl + " TO " + acct
		if addOpt {
			st += " WITH GRANT OPTION"
		}
		stmts = append(stmts, st)
	}
	revoke := revokeSafe
	if r.AllowDestroy {
		revoke = append(append([]string{}, revokeSafe...), revokeHand...)
		sortPrivileges(revoke)
	}
	if len(revoke) > 0 {
		stmts = append(stmts, "REVOKE "+strings.Join(revoke, ", ")+" ON "+lvl+" FROM "+acct)
	}
	if dropOpt && (declared.GrantOption || r.AllowDestroy) {
		stmts = append(stmts, "REVOKE GRANT OPTION ON "+lvl+" FROM "+acct)
	}
	if len(wildRevoke) > 0 {
		// The pattern as stored, unescaped: the wildcard grant itself.
		stmts = append(stmts, "REVOKE "+strings.Join(wildRevoke, ", ")+" ON "+quoteIdent(s.Database)+".* FROM "+acct)
	}
	// What the CUE has ever declared on this grant, to class later revokes.
	newDeclared := declared.Privs.union(want)
	recordHistory := newDeclared.len() != declared.Privs.len() || (wantOpt && !declared.GrantOption)
	p.Apply = func(ctx context.Context) error {
		// The statements change this account alone (and the declared
		// grants, which are kept by account).
		defer c.forgetAccount(env, who)
		for _, st := range stmts {
			if err := c.exec(ctx, r.ID, st); err != nil {
				return err
			}
		}
		if recordHistory {
			if !hist.exists {
				// recordDeclared creates the bookkeeping database.
				defer c.forgetSchemata(env)
			}
			return c.recordDeclared(ctx, r.ID, hist, key, newDeclared, declared.GrantOption || wantOpt)
		}
		return nil
	}
	return p, nil
}

// wildcard returns what the account holds on the database-level pattern
// that the unescaped database name makes (feature_store_online, where _
// matches any character), or nil when it holds nothing there or the name
// has no wildcard character.
func (s *GrantSpec) wildcard(all *grantStates) *grantState {
	if all.wildcards == 0 || s.Database == "*" || s.Table != "*" || !strings.ContainsAny(s.Database, "_%") {
		return nil
	}
	k := s.key()
	k.Wildcard = true
	g := all.m[k]
	if g == nil || (g.Privs.len() == 0 && !g.GrantOption) {
		return nil
	}
	return g
}

// recordDeclared upserts the privileges ever declared on a grant, in the
// declared-grants table of hist's bookkeeping database (created on first
// use).
func (c *conn) recordDeclared(ctx context.Context, id reconciler.ID, hist *history, k grantKey, privs privSet, opt bool) error {
	if !hist.exists {
		if err := c.exec(ctx, id, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(hist.db)); err != nil {
			return fmt.Errorf("record declared grant: %w", err)
		}
		if err := c.exec(ctx, id, historyDDL(hist.db)); err != nil {
			return fmt.Errorf("record declared grant: %w", err)
		}
	}
	err := c.exec(ctx, id, "INSERT INTO "+quoteIdent(hist.db)+"."+quoteIdent(historyTable)+" (`user`, `host`, `db`, `tbl`, `privileges`, `grant_option`) VALUES (?, ?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE `privileges` = VALUES(`privileges`), `grant_option` = VALUES(`grant_option`)",
		k.User, k.Host, k.Database, k.Table, strings.Join(privs.list(), ","), opt)
	if err != nil {
		return fmt.Errorf("record declared grant: %w", err)
	}
	return nil
}
