package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// Observation is batched per server and per run: every resource of every
// mariadb kind on one server shares one read of each of these, through the
// run's cache. A quiet run over any number of users and grants therefore
// sends a fixed handful of queries:
//
//	accounts    SELECT User, Host, Priv FROM mysql.global_priv
//	privileges  one UNION ALL over information_schema.USER_PRIVILEGES
//	            and TABLE_PRIVILEGES, and one read of mysql.db (see
//	            compactDBQuery), at once on two pooled connections
//	schemata    SELECT ... FROM information_schema.SCHEMATA
//
// the declared grants (SELECT ... FROM fsgit.declared_grants) when a grant
// has changes to class, and, per migration resource, one read of
// information_schema.TABLES for its database and one of its
// fsgit_schema_migrations table.
const (
	cacheAccounts   = "mariadb/accounts "
	cachePrivileges = "mariadb/privileges "
	cacheHistory    = "mariadb/history "
	cacheSchemata   = "mariadb/schemata "
	cacheMigrations = "mariadb/migrations "
)

// forget drops every cached observation of this server after an apply, so
// that a resource planned later in the run sees what the apply did.
//
// This makes a first run quadratic in the number of accounts: after each
// apply the next plan reads every account's rows again, and the engine
// verifies each applied resource with a fresh cache, which reads them all
// once more to look at one account (measured: 125, 250, 500 users with 4
// grants each take 1.2, 5.5, 23 s of CPU). The fix, not done: an apply of
// a user or grant marks its account stale in the run's observation instead
// of dropping it, and a plan of that account reads its rows alone (User and
// Host in the WHERE of each read); what other accounts hold stays the run's
// read, which only this run's applies change as far as the run knows (the
// assumption the shared read makes already). Security applies (many
// accounts) and migrations (any SQL) still drop everything. A verify needs
// the same narrow read, and a way to know it is one: the engine would have
// to say so (a field of Env), since its fresh cache is what makes it a
// verify.
func (c *conn) forget(env *reconciler.Env) {
	if env == nil || env.Cache == nil {
		return
	}
	for _, k := range []string{c.cacheKeys.accounts, c.cacheKeys.privileges, c.cacheKeys.schemata} {
		env.Cache.Forget(k)
	}
	c.historyDBs.Range(func(_, key any) bool {
		env.Cache.Forget(key.(string))
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
	return once(env, c.cacheKeys.accounts, func() (map[accountKey]accountState, error) {
		rows, err := c.db.QueryContext(ctx, "SELECT User, Host, Priv FROM mysql.global_priv")
		if err != nil {
			return nil, c.wrap("read accounts", err)
		}
		defer rows.Close()
		out := make(map[accountKey]accountState, c.sizes.accounts.Load())
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
		c.sizes.accounts.Store(int64(len(out)))
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

// Privileges are read in two statements. Global and table-level ones come
// from information_schema (a row per account and privilege: few, as
// accounts hold USAGE globally and rarely table grants). Database-level
// ones come from mysql.db, where MariaDB keeps them: one row per account
// and database with a Y/N column per privilege. Its information_schema
// view, SCHEMA_PRIVILEGES, has a row per privilege instead (26 for an
// account with 4 grants, one of them ALL PRIVILEGES), which the server
// materializes in a temporary table (on disk past 16 MiB: a thousand such
// accounts) and the client decodes row by row; mysql.db costs a fraction
// of both. The string literals are plain ASCII in single quotes, which no
// sql_mode changes.
const privilegesQuery = `SELECT GRANTEE, '*', '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES`

// mysql.db is read in one of two ways. databasePrivilegesQuery reads it
// whole and finds the privilege columns by name, which any server version
// can answer. The driver, though, allocates for every column of every row
// (22 columns, a row per account and database), so a quiet run first asks
// compactDBQuery: the privilege columns of MariaDB 10.11's mysql.db
// (dbColumns) concatenated into one string of Y and N, and one more row
// (User NULL, which no account row has) holding the table's actual column
// list. Only when that list is dbColumns, in order, are the rows read as
// such; a server whose mysql.db differs (another version) is read again
// with databasePrivilegesQuery, and one that lacks a column fails the
// compact query and is read so too. Either way one statement per run on
// the server this package is tested against.
const databasePrivilegesQuery = "SELECT * FROM mysql.db"

// dbColumns are the columns of MariaDB 10.11's mysql.db, in order.
var dbColumns = []string{
	"Host", "Db", "User", "Select_priv", "Insert_priv", "Update_priv",
	"Delete_priv", "Create_priv", "Drop_priv", "Grant_priv", "References_priv",
	"Index_priv", "Alter_priv", "Create_tmp_table_priv", "Lock_tables_priv",
	"Create_view_priv", "Show_view_priv", "Create_routine_priv",
	"Alter_routine_priv", "Execute_priv", "Event_priv", "Trigger_priv",
	"Delete_history_priv",
}

// compactDB is compactDBQuery and how to read its rows: the privilege
// of each character of the Y/N string (a bit, 0 for Grant_priv), and the
// position of Grant_priv.
type compactDB struct {
	query   string
	columns string // dbColumns joined with commas, as the check row has them
	bits    []uint64
	grant   int
}

// compactDBQuery builds the compact read of mysql.db from dbColumns. The
// names are fsgit's constants, quoted with backticks all the same.
var compactDBQuery = sync.OnceValue(func() *compactDB {
	q := &compactDB{columns: strings.Join(dbColumns, ","), grant: -1}
	var privCols []string
	for _, col := range dbColumns[3:] {
		if col == "Grant_priv" {
			q.grant = len(privCols)
			q.bits = append(q.bits, 0)
		} else {
			b, ok := privBit(columnPrivilege(col))
			if !ok {
				panic("mariadb: dbColumns: no privilege bit for " + col)
			}
			q.bits = append(q.bits, b)
		}
		privCols = append(privCols, quoteIdent(col))
	}
	q.query = "SELECT User, Host, Db, CONCAT(" + strings.Join(privCols, ", ") + ") FROM mysql.db" +
		" UNION ALL SELECT NULL, NULL, NULL, GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR ',')" +
		" FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'db'"
	return q
})

// privileges reads what every account holds at every level. The two
// statements run at once, each on a pooled connection of its own. They
// are separate statements, as they were when they ran one after the
// other: neither is a snapshot of the other, and a change made by hand
// while they run may show in one and not in the other. That is all a plan
// relies on: a quiet run only observes, and an apply's statements, made
// from its plan, are checked by the verify that follows (a fresh read). A
// failed read fails the whole observation: no plan is made from part of
// it.
func (c *conn) privileges(ctx context.Context, env *reconciler.Env) (*grantStates, error) {
	return once(env, c.cacheKeys.privileges, func() (*grantStates, error) {
		g := newGrantStates(int(c.sizes.privileges.Load()))
		global := newGrantStates(int(c.sizes.globalPrivileges.Load()))
		var errGlobal error
		var wg sync.WaitGroup
		wg.Go(func() {
			var in interner
			errGlobal = c.readPrivileges(ctx, global, &in)
		})
		var in interner
		errDB := c.readDatabasePrivileges(ctx, g, &in)
		wg.Wait()
		if err := errors.Join(errGlobal, errDB); err != nil {
			return nil, err
		}
		c.sizes.globalPrivileges.Store(int64(len(global.m)))
		g.merge(global)
		c.sizes.privileges.Store(int64(len(g.m)))
		return g, nil
	})
}

// interner hands out one string per distinct byte content, so that the
// thousands of rows of a read share their user, host, database and
// privilege names instead of allocating each.
type interner struct {
	s map[string]string
	// db memoizes parseDBPattern by the pattern as stored.
	db map[string]dbPattern
}

// dbPattern is what parseDBPattern makes of a pattern.
type dbPattern struct {
	name     string
	wildcard bool
}

func (in *interner) str(b []byte) string {
	if s, ok := in.s[string(b)]; ok {
		return s
	}
	if in.s == nil {
		in.s = map[string]string{}
	}
	s := string(b)
	in.s[s] = s
	return s
}

// lower is str of b in lower case, as strings.ToLower has it.
func (in *interner) lower(b []byte) string {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' || c >= 0x80 {
			return in.str(bytes.ToLower(b))
		}
	}
	return in.str(b)
}

// dbPattern is parseDBPattern of b, computed once per distinct pattern.
func (in *interner) dbPattern(b []byte) (name string, wildcard bool) {
	if d, ok := in.db[string(b)]; ok {
		return d.name, d.wildcard
	}
	if in.db == nil {
		in.db = map[string]dbPattern{}
	}
	p := in.str(b)
	name, wildcard = parseDBPattern(p)
	in.db[p] = dbPattern{name, wildcard}
	return name, wildcard
}

// grantStates collects what accounts hold, level by level, as a read
// finds it.
type grantStates struct {
	m map[grantKey]*grantState
	// wildcards counts the keys of m that are Wildcard: a plan need not
	// look for one when there are none.
	wildcards int
	// slab holds the states, allocated many at a time: a read makes
	// thousands.
	slab []grantState
}

// newGrantStates returns an empty collection sized for about n levels.
func newGrantStates(n int) *grantStates {
	return &grantStates{m: make(map[grantKey]*grantState, n), slab: make([]grantState, 0, max(n, 16))}
}

// state returns the entry for k, created empty when missing.
func (g *grantStates) state(k grantKey) *grantState {
	st := g.m[k]
	if st == nil {
		if len(g.slab) == cap(g.slab) {
			// A new slab: the states handed out stay where they are.
			g.slab = make([]grantState, 0, 2*cap(g.slab))
		}
		g.slab = g.slab[:len(g.slab)+1]
		st = &g.slab[len(g.slab)-1]
		g.m[k] = st
		if k.Wildcard {
			g.wildcards++
		}
	}
	return st
}

// merge adds what o holds to g.
func (g *grantStates) merge(o *grantStates) {
	for k, st := range o.m {
		if cur := g.m[k]; cur != nil {
			cur.Privs = cur.Privs.union(st.Privs)
			cur.GrantOption = cur.GrantOption || st.GrantOption
			continue
		}
		g.m[k] = st
		if k.Wildcard {
			g.wildcards++
		}
	}
}

// readPrivileges adds the global and table-level privileges to out.
func (c *conn) readPrivileges(ctx context.Context, out *grantStates, in *interner) error {
	rows, err := c.db.QueryContext(ctx, c.queries.privileges)
	if err != nil {
		return c.wrap("read privileges", err)
	}
	defer rows.Close()
	var grantee, db, table, priv, grantable sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&grantee, &db, &table, &priv, &grantable); err != nil {
			return c.wrap("read privileges", err)
		}
		user, host, ok := parseGrantee(grantee)
		if !ok {
			continue // not an account fsgit could manage
		}
		st := out.state(grantKey{User: in.str(user), Host: in.lower(host), Database: in.str(db), Table: in.str(table)})
		if string(priv) != "USAGE" {
			st.Privs.addBytes(priv, in)
		}
		if string(grantable) == "YES" {
			st.GrantOption = true
		}
	}
	if err := rows.Err(); err != nil {
		return c.wrap("read privileges", err)
	}
	return nil
}

// readDatabasePrivileges adds the database-level privileges, from
// mysql.db, to out: compactly when the server's mysql.db is the one fsgit
// knows (see compactDBQuery), else whole.
func (c *conn) readDatabasePrivileges(ctx context.Context, out *grantStates, in *interner) error {
	if c.queries.compactDB {
		ok, err := c.readDatabasePrivilegesCompact(ctx, out, in)
		if err != nil || ok {
			return err
		}
		// Another mysql.db: what was read is dropped.
		clear(out.m)
		out.slab, out.wildcards = out.slab[:0], 0
	}
	return c.readDatabasePrivilegesWhole(ctx, out, in)
}

// readDatabasePrivilegesCompact reads mysql.db with compactDBQuery. It
// reports false, with nothing to trust in out, when the server's mysql.db
// is not dbColumns (it lacks one: the statement fails with
// ER_BAD_FIELD_ERROR; or it has others, or another order: the check row
// says so).
func (c *conn) readDatabasePrivilegesCompact(ctx context.Context, out *grantStates, in *interner) (bool, error) {
	q := compactDBQuery()
	rows, err := c.db.QueryContext(ctx, q.query)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1054 { // unknown column
			return false, nil
		}
		return false, c.wrap("read database privileges", err)
	}
	defer rows.Close()
	var user, host, db, privs sql.RawBytes
	checked := false
	for rows.Next() {
		if err := rows.Scan(&user, &host, &db, &privs); err != nil {
			return false, c.wrap("read database privileges", err)
		}
		if user == nil {
			if checked || string(privs) != q.columns {
				return false, nil
			}
			checked = true
			continue
		}
		if len(privs) != len(q.bits) {
			return false, nil // an empty enum value: the columns do not line up
		}
		k := grantKey{User: in.str(user), Host: in.lower(host), Table: "*"}
		k.Database, k.Wildcard = in.dbPattern(db)
		st := out.state(k)
		for i, yn := range privs {
			switch {
			case yn != 'Y':
			case i == q.grant:
				st.GrantOption = true
			default:
				st.Privs.bits |= q.bits[i]
			}
		}
	}
	if err := rows.Err(); err != nil {
		return false, c.wrap("read database privileges", err)
	}
	return checked, nil
}

// readDatabasePrivilegesWhole adds the database-level privileges, from
// every column of mysql.db, to out. Its privilege columns are found by
// name (Select_priv is SELECT, Create_tmp_table_priv CREATE TEMPORARY
// TABLES, Grant_priv the grant option), so that a server version with
// more of them is read whole; TestPrivilegesAsInformationSchema checks
// the result against information_schema.SCHEMA_PRIVILEGES.
func (c *conn) readDatabasePrivilegesWhole(ctx context.Context, out *grantStates, in *interner) error {
	rows, err := c.db.QueryContext(ctx, c.queries.wholeDB)
	if err != nil {
		return c.wrap("read database privileges", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return c.wrap("read database privileges", err)
	}
	vals := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	user, host, db, grant := -1, -1, -1, -1
	privs := make([]string, len(cols))   // privilege of each column, "" for none
	colBits := make([]uint64, len(cols)) // its bit, 0 for none or one fsgit does not know
	for i, col := range cols {
		switch col {
		case "User":
			user = i
		case "Host":
			host = i
		case "Db":
			db = i
		case "Grant_priv":
			grant = i
		default:
			privs[i] = columnPrivilege(col)
			colBits[i], _ = privBit(privs[i])
		}
	}
	if user < 0 || host < 0 || db < 0 || grant < 0 {
		return fmt.Errorf("read database privileges: mysql.db has columns %v, want User, Host, Db and Grant_priv", cols)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return c.wrap("read database privileges", err)
		}
		k := grantKey{User: in.str(vals[user]), Host: in.lower(vals[host]), Table: "*"}
		// mysql.db.Db is the grant's pattern: feature\_store\_online for
		// the database feature_store_online alone.
		k.Database, k.Wildcard = in.dbPattern(vals[db])
		st := out.state(k)
		for i, p := range privs {
			if p == "" || string(vals[i]) != "Y" {
				continue
			}
			if colBits[i] != 0 {
				st.Privs.bits |= colBits[i]
			} else {
				st.Privs.add(p)
			}
		}
		if string(vals[grant]) == "Y" {
			st.GrantOption = true
		}
	}
	if err := rows.Err(); err != nil {
		return c.wrap("read database privileges", err)
	}
	return nil
}

// columnPrivilege names the privilege of a mysql.db column as
// information_schema does (Show_view_priv: SHOW VIEW), or "" for a column
// that holds none.
func columnPrivilege(col string) string {
	name, ok := strings.CutSuffix(col, "_priv")
	if !ok {
		return ""
	}
	if name == "Create_tmp_table" {
		return "CREATE TEMPORARY TABLES"
	}
	return strings.ToUpper(strings.ReplaceAll(name, "_", " "))
}

// parseGrantee splits information_schema's 'user'@'host'.
func parseGrantee(g []byte) (user, host []byte, ok bool) {
	if len(g) < 5 || g[0] != '\'' || g[len(g)-1] != '\'' {
		return nil, nil, false
	}
	i := bytes.LastIndex(g, []byte("'@'"))
	if i < 1 {
		return nil, nil, false
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
	key, ok := c.historyDBs.Load(db)
	if !ok {
		key, _ = c.historyDBs.LoadOrStore(db, cacheHistory+c.key+" "+db)
	}
	return once(env, key.(string), func() (*history, error) {
		h := &history{db: db, m: make(map[grantKey]grantState, c.sizes.history.Load())}
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
		var in interner
		var user, host, database, table, privs sql.RawBytes
		for rows.Next() {
			var opt bool
			if err := rows.Scan(&user, &host, &database, &table, &privs, &opt); err != nil {
				return nil, c.wrap("read declared grants", err)
			}
			k := grantKey{User: in.str(user), Host: in.str(host), Database: in.str(database), Table: in.str(table)}
			st := grantState{GrantOption: opt}
			for p := range bytes.SplitSeq(privs, []byte(",")) {
				if len(p) > 0 {
					st.Privs.addBytes(p, &in)
				}
			}
			h.m[k] = st
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read declared grants", err)
		}
		c.sizes.history.Store(int64(len(h.m)))
		return h, nil
	})
}

// schema is one row of information_schema.SCHEMATA.
type schema struct{ Charset, Collation string }

func (c *conn) schemata(ctx context.Context, env *reconciler.Env) (map[string]schema, error) {
	return once(env, c.cacheKeys.schemata, func() (map[string]schema, error) {
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
