package mariadb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
)

// SecuritySpec is the spec of a mariadb.security resource (ID
// mariadb.security:<name>): what mysql_secure_installation does, kept true
// on every run. Each part is on unless switched off:
//
//   - RemoveAnonymousUsers: no account with an empty user name.
//     mariadb-install-db makes ”@'localhost' and ”@'<hostname>'; with them
//     a user declared at '%' cannot log in over the local socket (the
//     anonymous account is the more specific match) and anyone can log in
//     without a password.
//   - RemoveTestDatabase: no database `test`, and none of the grants
//     mariadb-install-db gives everyone (PUBLIC, or the anonymous user in
//     older servers) on `test` and `test\_%` (any database whose name
//     starts with test_).
//   - RootUnixSocketOnly: root logs in through unix_socket only: every
//     root account at another host than localhost is dropped, and
//     root@localhost, when it has a method that takes a password, is set
//     to IDENTIFIED VIA unix_socket. The "mysql_native_password USING
//     'invalid' OR unix_socket" that mariadb-install-db and Debian create
//     is already socket-only and is left alone.
//
// Every change drops an account, a database or a grant, so each is
// destructive: it runs only where the resource allows destroy (the
// mariadb_server profile sets allowDestroy on the one it declares) and is
// held as a pending destroy otherwise.
type SecuritySpec struct {
	RemoveAnonymousUsers bool   `json:"removeAnonymousUsers"`
	RemoveTestDatabase   bool   `json:"removeTestDatabase"`
	RootUnixSocketOnly   bool   `json:"rootUnixSocketOnly"`
	Server               Server `json:"server"`
}

// SecurityKind implements mariadb.security.
type SecurityKind struct{ k *Kinds }

var _ reconciler.KindOf[SecuritySpec] = (*SecurityKind)(nil)

// Kind returns "mariadb.security".
func (*SecurityKind) Kind() string { return "mariadb.security" }

// testDatabase and testPattern are what mariadb-install-db creates and
// grants on: the database test and every database named test_...
const (
	testDatabase = "test"
	testPattern  = `test\_%`
	publicRole   = "PUBLIC"
)

// Close closes the MariaDB connection pools the kinds share.
func (k *SecurityKind) Close() error { return k.k.Close() }

// Check checks the server and that the spec does not lock fsgit out of
// it (no I/O).
func (*SecurityKind) Check(r *reconciler.Resource, s *SecuritySpec) error {
	if err := s.Server.validate(); err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	if s.RootUnixSocketOnly && s.Server.AdminUser == "root" && s.Server.AdminPassword != nil {
		return fmt.Errorf("%s: rootUnixSocketOnly would lock out fsgit's own connection (root with a password): connect as root over the socket, as another admin account, or set rootUnixSocketOnly: false", r.ID)
	}
	return nil
}

// socketOnly reports whether an account can only log in through
// unix_socket: each method is unix_socket, or a password method whose
// stored string no password hashes to ("invalid").
func socketOnly(a accountState) bool {
	socket := false
	for _, m := range a.Methods {
		switch {
		case m.Plugin == pluginSocket:
			socket = true
		case m.Plugin == pluginNative && m.Auth == "invalid":
		default:
			return false
		}
	}
	return socket
}

// securityStep is one statement of the plan.
type securityStep struct {
	stmt string
	args []any
}

// Plan observes accounts, databases and privileges (the run's shared
// reads) and plans what is left of an unsecured installation.
func (k *SecurityKind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *SecuritySpec) (*reconciler.Plan, error) {
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	accts, err := c.accounts(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	p := &reconciler.Plan{Observed: map[string]string{}}
	var steps []securityStep
	change := func(field, before, after string, st ...securityStep) {
		p.Changes = append(p.Changes, reconciler.Change{Field: field, Before: before, After: after, Class: reconciler.Destructive})
		steps = append(steps, st...)
	}
	keys := make([]accountKey, 0, len(accts))
	for a := range accts {
		keys = append(keys, a)
	}
	slices.SortFunc(keys, func(a, b accountKey) int { return strings.Compare(a.String(), b.String()) })

	if s.RemoveAnonymousUsers {
		var anon []string
		for _, a := range keys {
			if a.User == "" && !accts[a].Role {
				anon = append(anon, "''@'"+a.Host+"'")
				change("anonymous account ''@'"+a.Host+"'", "present", "absent", securityStep{stmt: "DROP USER " + account("", a.Host)})
			}
		}
		p.Observed["anonymousAccounts"] = listOrNone(anon)
	}

	if s.RootUnixSocketOnly {
		var roots []string
		for _, a := range keys {
			if a.User != "root" || accts[a].Role {
				continue
			}
			st := accts[a]
			desc := "password"
			if socketOnly(st) {
				desc = "unix_socket only"
			}
			roots = append(roots, "root@'"+a.Host+"' ("+desc+")")
			switch {
			case a.Host != "localhost":
				change("root account root@'"+a.Host+"'", "present", "absent (root only through unix_socket on localhost)",
					securityStep{stmt: "DROP USER " + account("root", a.Host)})
			case !socketOnly(st):
				change("root@'localhost' authentication", "takes a password", "unix_socket only",
					securityStep{stmt: "ALTER USER " + account("root", "localhost") + " IDENTIFIED VIA unix_socket"})
			}
		}
		p.Observed["rootAccounts"] = listOrNone(roots)
	}

	if s.RemoveTestDatabase {
		dbs, err := c.schemata(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.ID, err)
		}
		privs, err := c.privileges(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.ID, err)
		}
		_, exists := dbs[testDatabase]
		p.Observed["testDatabase"] = fmt.Sprint(exists)
		if exists {
			change("database test", "present", "absent", securityStep{stmt: "DROP DATABASE " + quoteIdent(testDatabase)})
		}
		var gks []grantKey
		for gk, st := range privs.m {
			public := (gk.User == publicRole && gk.Host == "") || gk.User == ""
			onTest := gk.Table == "*" && ((gk.Database == testDatabase && !gk.Wildcard) || (gk.Database == testPattern && gk.Wildcard))
			if public && onTest && (st.Privs.len() > 0 || st.GrantOption) {
				gks = append(gks, gk)
			}
		}
		slices.SortFunc(gks, func(a, b grantKey) int {
			return strings.Compare(a.User+"@"+a.Host+"/"+a.Database, b.User+"@"+b.Host+"/"+b.Database)
		})
		var held []string
		for _, gk := range gks {
			pattern := gk.Database
			if !gk.Wildcard {
				pattern = escapeDBPattern(gk.Database)
			}
			who := publicRole
			if gk.User == "" {
				who = "''@'" + gk.Host + "'"
			}
			held = append(held, who+" on "+pattern)
			var st []securityStep
			switch _, acct := accts[accountKey{gk.User, gk.Host}]; {
			case gk.User == publicRole:
				st = []securityStep{{stmt: "REVOKE ALL PRIVILEGES ON " + quoteIdent(pattern) + ".* FROM " + publicRole}}
			case acct:
				st = []securityStep{{stmt: "REVOKE ALL PRIVILEGES ON " + quoteIdent(pattern) + ".* FROM " + account(gk.User, gk.Host)}}
			default:
				// A grant to an anonymous user that has no account (the
				// ''@'%' rows of older servers): REVOKE needs an account,
				// so the row goes, as mysql_secure_installation does it.
				st = []securityStep{
					{stmt: "DELETE FROM mysql.db WHERE User = ? AND Host = ? AND Db = ?", args: []any{gk.User, gk.Host, pattern}},
					{stmt: "FLUSH PRIVILEGES"},
				}
			}
			change("grant to everyone ("+who+") on "+pattern+".*", strings.Join(grantList(privs.m[gk]), ", "), "revoked", st...)
		}
		p.Observed["testGrants"] = listOrNone(held)
	}

	if len(p.Changes) == 0 {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	p.Apply = func(ctx context.Context) error {
		if !r.AllowDestroy {
			return fmt.Errorf("%s: destroy not allowed on this resource", r.ID)
		}
		defer c.forget(env)
		for _, st := range steps {
			if err := c.exec(ctx, r.ID, st.stmt, st.args...); err != nil {
				return err
			}
		}
		return nil
	}
	return p, nil
}

// grantList lists a grant's privileges for a change's Before.
func grantList(g *grantState) []string {
	l := g.Privs.list()
	if g.GrantOption {
		l = append(l, "GRANT OPTION")
	}
	return l
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
