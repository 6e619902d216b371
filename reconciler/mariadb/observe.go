package mariadb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// Observation is batched per server and per run: every resource of every
// mariadb kind on one server shares one read of each of these, through the
// run's cache. A quiet run over any number of users and grants therefore
// sends a fixed handful of queries:
//
//	accounts    SELECT User, Host, Priv FROM mysql.global_priv
//	privileges  one UNION ALL over information_schema.USER_PRIVILEGES,
//	            SCHEMA_PRIVILEGES and TABLE_PRIVILEGES
//	history     SELECT ... FROM fsgit.declared_grants
//	schemata    SELECT ... FROM information_schema.SCHEMATA
//
// and, per migration resource, one read of information_schema.TABLES for
// its database and one of its fsgit_schema_migrations table.
const (
	cacheAccounts   = "mariadb/accounts "
	cachePrivileges = "mariadb/privileges "
	cacheHistory    = "mariadb/history "
	cacheSchemata   = "mariadb/schemata "
	cacheMigrations = "mariadb/migrations "
)

// forget drops every cached observation of this server after an apply, so
// that a resource planned later in the run sees what the apply did.
func (c *conn) forget(env *reconciler.Env) {
	if env == nil || env.Cache == nil {
		return
	}
	for _, p := range []string{cacheAccounts, cachePrivileges, cacheSchemata} {
		env.Cache.Forget(p + c.key)
	}
	c.historyDBs.Range(func(db, _ any) bool {
		env.Cache.Forget(cacheHistory + c.key + " " + db.(string))
		return true
	})
}

func (c *conn) forgetMigrations(env *reconciler.Env, database string) {
	if env != nil && env.Cache != nil {
		env.Cache.Forget(cacheMigrations + c.key + " " + database)
	}
}

// once runs f through the run's cache, or directly when there is none.
func once[T any](env *reconciler.Env, key string, f func() (T, error)) (T, error) {
	if env == nil || env.Cache == nil {
		return f()
	}
	v, err := env.Cache.Once(key, func() (any, error) { return f() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// accountKey names an account. Host is lower case: MariaDB stores and
// compares host names case-insensitively.
type accountKey struct{ User, Host string }

func (a accountKey) String() string { return a.User + "@" + a.Host }

// accountState is one row of mysql.global_priv, as much as fsgit manages.
type accountState struct {
	Plugin string
	// Auth is the stored authentication string: secret-derived, never
	// printed, logged or put in Observed.
	Auth string
	// AuthOr is set when the account has several authentication methods
	// (IDENTIFIED VIA a OR b).
	AuthOr bool
	// Methods are the account's authentication methods, in order: one, or
	// each of IDENTIFIED VIA a OR b. Auth strings are secret-derived.
	Methods []authMethod
	// Role is set for a role (PUBLIC, or CREATE ROLE), which is not an
	// account one logs in as.
	Role   bool
	Limits Limits
}

// authMethod is one way an account authenticates.
type authMethod struct{ Plugin, Auth string }

// authOrEntry is one element of auth_or: empty for the method in the
// top-level plugin and authentication_string.
type authOrEntry struct {
	Plugin string `json:"plugin"`
	Auth   string `json:"authentication_string"`
}

// globalPriv is the JSON of mysql.global_priv.Priv.
type globalPriv struct {
	Plugin             string        `json:"plugin"`
	Auth               string        `json:"authentication_string"`
	AuthOr             []authOrEntry `json:"auth_or"`
	IsRole             bool          `json:"is_role"`
	MaxQuestions       int64         `json:"max_questions"`
	MaxUpdates         int64         `json:"max_updates"`
	MaxConnections     int64         `json:"max_connections"`
	MaxUserConnections int64         `json:"max_user_connections"`
}

func (c *conn) accounts(ctx context.Context, env *reconciler.Env) (map[accountKey]accountState, error) {
	return once(env, cacheAccounts+c.key, func() (map[accountKey]accountState, error) {
		rows, err := c.db.QueryContext(ctx, "SELECT User, Host, Priv FROM mysql.global_priv")
		if err != nil {
			return nil, c.wrap("read accounts", err)
		}
		defer rows.Close()
		out := map[accountKey]accountState{}
		for rows.Next() {
			var user, host, priv string
			if err := rows.Scan(&user, &host, &priv); err != nil {
				return nil, c.wrap("read accounts", err)
			}
			var gp globalPriv
			if err := json.Unmarshal([]byte(priv), &gp); err != nil {
				return nil, fmt.Errorf("read accounts: decode privileges of %s@%s: %w", user, host, err)
			}
			methods := []authMethod{{gp.Plugin, gp.Auth}}
			if len(gp.AuthOr) > 0 {
				methods = methods[:0]
				for _, e := range gp.AuthOr {
					if e.Plugin == "" {
						e.Plugin, e.Auth = gp.Plugin, gp.Auth
					}
					methods = append(methods, authMethod{e.Plugin, e.Auth})
				}
			}
			out[accountKey{user, strings.ToLower(host)}] = accountState{
				Plugin:  gp.Plugin,
				Auth:    gp.Auth,
				AuthOr:  len(gp.AuthOr) > 0,
				Methods: methods,
				Role:    gp.IsRole,
				Limits: Limits{
					MaxQueriesPerHour:     gp.MaxQuestions,
					MaxUpdatesPerHour:     gp.MaxUpdates,
					MaxConnectionsPerHour: gp.MaxConnections,
					MaxUserConnections:    gp.MaxUserConnections,
				},
			}
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read accounts", err)
		}
		return out, nil
	})
}

// grantKey names a privilege level of an account: Database "*" is global,
// Table "*" a whole database. Wildcard marks a database-level grant whose
// database is a pattern with unescaped _ or % (Database is then the pattern
// as stored): it reaches every database the pattern matches, and is never
// the level a grant resource declares.
type grantKey struct {
	User, Host, Database, Table string
	Wildcard                    bool
}

// grantState is what an account holds at one level.
type grantState struct {
	Privs       privSet
	GrantOption bool
}

// privilegesQuery reads every account's privileges at every level in one
// statement. The string literals are plain ASCII in single quotes, which no
// sql_mode changes.
const privilegesQuery = `SELECT GRANTEE, '*', '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES`

func (c *conn) privileges(ctx context.Context, env *reconciler.Env) (map[grantKey]*grantState, error) {
	return once(env, cachePrivileges+c.key, func() (map[grantKey]*grantState, error) {
		rows, err := c.db.QueryContext(ctx, privilegesQuery)
		if err != nil {
			return nil, c.wrap("read privileges", err)
		}
		defer rows.Close()
		out := map[grantKey]*grantState{}
		for rows.Next() {
			var grantee, db, table, priv, grantable string
			if err := rows.Scan(&grantee, &db, &table, &priv, &grantable); err != nil {
				return nil, c.wrap("read privileges", err)
			}
			user, host, ok := parseGrantee(grantee)
			if !ok {
				continue // not an account fsgit could manage
			}
			k := grantKey{User: user, Host: strings.ToLower(host), Database: db, Table: table}
			if db != "*" && table == "*" {
				// SCHEMA_PRIVILEGES reports the database as the grant's
				// pattern (mysql.db.Db): feature\_store\_online for the
				// database feature_store_online alone.
				k.Database, k.Wildcard = parseDBPattern(db)
			}
			st := out[k]
			if st == nil {
				st = &grantState{Privs: privSet{}}
				out[k] = st
			}
			if priv != "USAGE" {
				st.Privs[priv] = true
			}
			if grantable == "YES" {
				st.GrantOption = true
			}
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read privileges", err)
		}
		return out, nil
	})
}

// parseGrantee splits information_schema's 'user'@'host'.
func parseGrantee(g string) (user, host string, ok bool) {
	if len(g) < 5 || g[0] != '\'' || g[len(g)-1] != '\'' {
		return "", "", false
	}
	i := strings.LastIndex(g, "'@'")
	if i < 1 {
		return "", "", false
	}
	return g[1:i], g[i+3 : len(g)-1], true
}

// History of declared grants. A REVOKE that removes a privilege the CUE
// once declared on that grant resource (a reviewed narrowing) is safe; one
// that removes access the CUE never declared there (granted by hand) is
// destructive and runs only with allowDestroy. To tell them apart fsgit
// records, when it applies a grant, the union of the privileges declared
// on it so far, in a table of its own on the server: declared_grants in
// the bookkeeping database (`fsgit` unless the server's
// bookkeepingDatabase names another). It is written only by an apply,
// never on a quiet run.
const (
	defaultBookkeeping = "fsgit"
	historyTable       = "declared_grants"
)

// historyDDL creates the declared-grants table in database (validated).
func historyDDL(database string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(database) + "." + quoteIdent(historyTable) + " (" +
		"`user` VARCHAR(128) NOT NULL, " +
		"`host` VARCHAR(255) NOT NULL, " +
		"`db` VARCHAR(64) NOT NULL, " +
		"`tbl` VARCHAR(64) NOT NULL, " +
		"`privileges` TEXT NOT NULL, " +
		"`grant_option` BOOLEAN NOT NULL DEFAULT FALSE, " +
		"`updated_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, " +
		"PRIMARY KEY (`user`, `host`, `db`, `tbl`)" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}

// history is the declared-grants table of one bookkeeping database;
// exists is false until the first grant apply creates it.
type history struct {
	db     string
	exists bool
	m      map[grantKey]grantState
}

func (c *conn) history(ctx context.Context, env *reconciler.Env, db string) (*history, error) {
	c.historyDBs.Store(db, true)
	return once(env, cacheHistory+c.key+" "+db, func() (*history, error) {
		h := &history{db: db, m: map[grantKey]grantState{}}
		rows, err := c.db.QueryContext(ctx, "SELECT `user`, `host`, `db`, `tbl`, `privileges`, `grant_option` FROM "+quoteIdent(db)+"."+quoteIdent(historyTable))
		if err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && (me.Number == 1146 || me.Number == 1049) { // no such table, no such database
				return h, nil
			}
			return nil, c.wrap("read declared grants", err)
		}
		defer rows.Close()
		h.exists = true
		for rows.Next() {
			var k grantKey
			var privs string
			var opt bool
			if err := rows.Scan(&k.User, &k.Host, &k.Database, &k.Table, &privs, &opt); err != nil {
				return nil, c.wrap("read declared grants", err)
			}
			st := grantState{Privs: privSet{}, GrantOption: opt}
			for _, p := range strings.Split(privs, ",") {
				if p != "" {
					st.Privs[p] = true
				}
			}
			h.m[k] = st
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read declared grants", err)
		}
		return h, nil
	})
}

// schema is one row of information_schema.SCHEMATA.
type schema struct{ Charset, Collation string }

func (c *conn) schemata(ctx context.Context, env *reconciler.Env) (map[string]schema, error) {
	return once(env, cacheSchemata+c.key, func() (map[string]schema, error) {
		rows, err := c.db.QueryContext(ctx, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA")
		if err != nil {
			return nil, c.wrap("read databases", err)
		}
		defer rows.Close()
		out := map[string]schema{}
		for rows.Next() {
			var name string
			var s schema
			if err := rows.Scan(&name, &s.Charset, &s.Collation); err != nil {
				return nil, c.wrap("read databases", err)
			}
			out[name] = s
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read databases", err)
		}
		return out, nil
	})
}
