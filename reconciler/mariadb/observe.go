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
//
// The reads of accounts, privileges and declared grants are kept in the
// run's observation of the server (see observation), which an apply of a
// user or grant does not drop: it marks the one account it changed, whose
// rows alone a later plan reads again (see accountsQuery).
const (
	cacheObservation = "mariadb/observation "
	cacheSchemata    = "mariadb/schemata "
	cacheMigrations  = "mariadb/migrations "
)

// The pieces of an observation: what one statement (or, for privileges,
// two at once) reads, whole or for one account.
const (
	pieceAccounts   = "accounts"
	piecePrivileges = "privileges"
	pieceHistory    = "history " // + the bookkeeping database
)

// forget drops every cached observation of this server after an apply
// that may change any account or database (a security resource's, which
// drops accounts and revokes across them, or a database's), so that a
// resource planned later in the run sees what the apply did. An apply of a
// user or grant calls forgetAccount instead, and a migration's
// forgetMigrations and forget (its SQL may do anything).
func (c *conn) forget(env *reconciler.Env) {
	if env == nil || env.Cache == nil {
		return
	}
	c.observation(env).reset()
	env.Cache.Forget(c.cacheKeys.schemata)
}

// forgetAccount marks the account a stale in the run's observation after
// an apply of a user or grant changed it (or may have: it is called
// whether the apply succeeded or not). The plans that follow read that
// account's rows again, and that account's alone: what other accounts hold
// stays as the run read it, which only this run's applies change as far
// as the run knows (the assumption that sharing one read makes already).
// Without it, every apply would drop the whole read, and a first run that
// creates N accounts would read N accounts N times, and its verifies as
// many again: BenchmarkFirstRun_Users4Grants, 125, 250, 500 users with 4
// grants each, took 1.0, 3.0, 10.2 s of fsgit's CPU so, and takes 0.42,
// 0.86, 1.88 s (the server's: 1.5, 3.3, 9.0 s, now 0.60, 1.27, 2.94 s).
func (c *conn) forgetAccount(env *reconciler.Env, a accountKey) {
	if env == nil || env.Cache == nil {
		return
	}
	c.observation(env).mark(a)
}

// forgetSchemata drops the run's read of the server's databases (after a
// grant's apply created the bookkeeping database).
func (c *conn) forgetSchemata(env *reconciler.Env) {
	if env != nil && env.Cache != nil {
		env.Cache.Forget(c.cacheKeys.schemata)
	}
}

func (c *conn) forgetMigrations(env *reconciler.Env, database string) {
	if env != nil && env.Cache != nil {
		env.Cache.Forget(cacheMigrations + c.key + " " + database)
	}
}

// observation is what one run has read of one server's accounts,
// privileges and declared grants: each piece read whole at most once per
// reset, and, for an account an apply of the run changed since that read,
// read again for that account alone.
//
// Every read and every mark takes a number from seq: a read started at n
// saw every apply whose mark is at most n (a mark is made after its
// apply's statements ran), and may or may not have seen one marked later.
// A plan of account a therefore uses the latest read of a alone, or else
// the whole read, when it started at or after a's last mark, and reads a
// alone otherwise; a plan that needs every account (a security resource)
// reads everything again when any account was marked since the whole read
// started. Applies of resources that run at once are not ordered with
// each other's plans (as before: the engine orders only dependencies), but
// a plan never uses a read that started before an apply that finished,
// and marked its account, before the plan began.
//
// It is safe for concurrent use. A read in progress is shared: a plan
// that needs it waits for it (or for its own context).
type observation struct {
	mu  sync.Mutex
	seq uint64
	// marks holds the seq of each marked account's last mark.
	marks map[accountKey]uint64
	// whole holds the latest whole read of each piece, narrow the latest
	// read of one account's rows.
	whole  map[string]*obsRead
	narrow map[narrowKey]*obsRead
}

// narrowKey names a piece read for one account.
type narrowKey struct {
	piece string
	acct  accountKey
}

// obsRead is one read, in progress until done is closed; v and err are
// set before.
type obsRead struct {
	seq  uint64
	done chan struct{}
	v    any
	err  error
}

// newObservation returns an observation with nothing read.
func newObservation() *observation {
	return &observation{marks: map[accountKey]uint64{}, whole: map[string]*obsRead{}, narrow: map[narrowKey]*obsRead{}}
}

// observation returns the run's observation of this server.
func (c *conn) observation(env *reconciler.Env) *observation {
	v, _ := env.Cache.Once(c.cacheKeys.observation, func() (any, error) { return newObservation(), nil })
	return v.(*observation)
}

// mark records that a's rows changed.
func (o *observation) mark(a accountKey) {
	o.mu.Lock()
	o.seq++
	o.marks[a] = o.seq
	o.mu.Unlock()
}

// reset drops every read: the next plan reads again whatever it needs.
// A read in progress finishes for the plans already waiting for it.
func (o *observation) reset() {
	o.mu.Lock()
	o.seq++
	clear(o.marks)
	clear(o.whole)
	clear(o.narrow)
	o.mu.Unlock()
}

// get returns piece: as the whole read has it when acct is nil (read
// again if any account was marked since it started), else what holds
// for *acct, from a read made since its last mark (the whole read, or
// one of its rows alone, made with narrow and kept as narrowPiece: a
// piece may be read for one account in parts, each a narrowPiece of its
// own).
func (o *observation) get(ctx context.Context, piece, narrowPiece string, acct *accountKey, whole, narrow func(context.Context) (any, error)) (any, error) {
	o.mu.Lock()
	r, f := o.pick(piece, narrowPiece, acct, whole, narrow)
	o.mu.Unlock()
	if f != nil {
		// A failed read is kept, as the run's cache keeps one: with the
		// server down, the run's plans fail at once rather than each
		// waiting for a connection of its own. One that panics (the
		// engine contains the panic) fails for the plans waiting too.
		finished := false
		defer func() {
			if !finished {
				r.err = fmt.Errorf("read %s: panicked", piece)
			}
			close(r.done)
		}()
		r.v, r.err = f(ctx)
		finished = true
		return r.v, r.err
	}
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pick finds the read to use, or starts one and returns the function that
// makes it. o.mu is held.
func (o *observation) pick(piece, narrowPiece string, acct *accountKey, whole, narrow func(context.Context) (any, error)) (*obsRead, func(context.Context) (any, error)) {
	start := func() *obsRead { return &obsRead{seq: o.seq, done: make(chan struct{})} }
	w := o.whole[piece]
	if acct == nil {
		if w != nil && w.seq >= o.seq {
			return w, nil
		}
		w = start()
		o.whole[piece] = w
		return w, whole
	}
	last := o.marks[*acct]
	k := narrowKey{narrowPiece, *acct}
	if n := o.narrow[k]; n != nil && n.seq >= last {
		return n, nil
	}
	switch {
	case w == nil:
		// Nothing read yet: the whole read serves this account and
		// every other.
		w = start()
		o.whole[piece] = w
		return w, whole
	case w.seq >= last:
		return w, nil
	}
	n := start()
	o.narrow[k] = n
	return n, narrow
}

// observe returns piece for acct (every account when nil): through the
// run's observation, or, in a verify or without a run cache, read directly
// (for acct alone when there is one). read reads acct's rows alone, or
// every account's when acct is nil; narrowPiece names what it reads of
// one account ("" for piece).
func observe[T any](ctx context.Context, c *conn, env *reconciler.Env, piece, narrowPiece string, acct *accountKey, read func(context.Context, *accountKey) (T, error)) (T, error) {
	if env == nil || env.Cache == nil || (env.Verify && acct != nil) {
		return read(ctx, acct)
	}
	if narrowPiece == "" {
		narrowPiece = piece
	}
	v, err := c.observation(env).get(ctx, piece, narrowPiece, acct,
		func(ctx context.Context) (any, error) { return read(ctx, nil) },
		func(ctx context.Context) (any, error) { return read(ctx, acct) })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
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

// accounts returns every account of the server, as the run observes it.
func (c *conn) accounts(ctx context.Context, env *reconciler.Env) (map[accountKey]accountState, error) {
	return observe(ctx, c, env, pieceAccounts, "", nil, c.readAccounts)
}

// account returns the accounts, a's state among them when it exists: the
// run's read of every account, or of a alone (see observation). Only a's
// entry may be looked at.
func (c *conn) account(ctx context.Context, env *reconciler.Env, a accountKey) (map[accountKey]accountState, error) {
	return observe(ctx, c, env, pieceAccounts, "", &a, c.readAccounts)
}

// accountsQuery reads mysql.global_priv: whole, or, with accountsOfUser,
// one user's rows (the rows of acct are then kept, and the others
// dropped). A user's rows are found by User alone, and their hosts
// compared as the whole read compares them, lower-cased: a host stored in
// capitals by hand is the same account. The primary key is (Host, User),
// so the server scans the table for it, a cost per row far below what the
// whole read costs fsgit (decoding every row).
const (
	accountsQuery  = "SELECT User, Host, Priv FROM mysql.global_priv"
	accountsOfUser = " WHERE User = ?"
)

// readAccounts reads every account, or acct's alone when it is not nil.
func (c *conn) readAccounts(ctx context.Context, acct *accountKey) (map[accountKey]accountState, error) {
	q, args := accountsQuery, []any(nil)
	if acct != nil {
		q, args = q+accountsOfUser, []any{acct.User}
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, c.wrap("read accounts", err)
	}
	defer rows.Close()
	n := 1
	if acct == nil {
		n = int(c.sizes.accounts.Load())
	}
	out := make(map[accountKey]accountState, n)
	for rows.Next() {
		var user, host, priv string
		if err := rows.Scan(&user, &host, &priv); err != nil {
			return nil, c.wrap("read accounts", err)
		}
		if acct != nil && (user != acct.User || strings.ToLower(host) != acct.Host) {
			continue
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
	if acct == nil {
		c.sizes.accounts.Store(int64(len(out)))
	}
	return out, nil
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
	return observe(ctx, c, env, piecePrivileges, "", nil, c.readGrants)
}

// accountPrivileges returns what accounts hold, a's levels among them:
// the run's read of every account, or of a alone (see observation). Only
// a's levels may be looked at, and only its database levels (mysql.db)
// when dbLevel is set, or only its global and table levels when not: a
// read of a alone reads those (see readAccountGrants).
func (c *conn) accountPrivileges(ctx context.Context, env *reconciler.Env, a accountKey, dbLevel bool) (*grantStates, error) {
	narrowPiece := piecePrivileges + " global and table"
	if dbLevel {
		narrowPiece = piecePrivileges + " database"
	}
	return observe(ctx, c, env, piecePrivileges, narrowPiece, &a, func(ctx context.Context, acct *accountKey) (*grantStates, error) {
		if acct == nil {
			return c.readGrants(ctx, nil)
		}
		return c.readAccountGrants(ctx, *acct, dbLevel)
	})
}

// readAccountGrants reads what acct holds at the database levels (with
// databasePrivilegesOfQuery, an index of mysql.db) when dbLevel is set,
// or at the global and table levels (privilegesOfQuery) when not. The
// latter costs the server a pass over every account (information_schema
// is filled whole, then filtered); a database-level grant, the common
// kind, does not need it.
func (c *conn) readAccountGrants(ctx context.Context, acct accountKey, dbLevel bool) (*grantStates, error) {
	g := newGrantStates(4)
	var in interner
	if dbLevel {
		if err := c.readDatabasePrivilegesWhole(ctx, &acct, g, &in); err != nil {
			return nil, err
		}
		return g, nil
	}
	if err := c.readPrivileges(ctx, &acct, g, &in); err != nil {
		return nil, err
	}
	return g, nil
}

// readGrants reads what every account holds (see privileges), or acct
// alone when it is not nil: then at every level, with readAccountGrants
// twice.
func (c *conn) readGrants(ctx context.Context, acct *accountKey) (*grantStates, error) {
	if acct != nil {
		g, err := c.readAccountGrants(ctx, *acct, false)
		if err != nil {
			return nil, err
		}
		d, err := c.readAccountGrants(ctx, *acct, true)
		if err != nil {
			return nil, err
		}
		g.merge(d)
		return g, nil
	}
	g := newGrantStates(int(c.sizes.privileges.Load()))
	global := newGrantStates(int(c.sizes.globalPrivileges.Load()))
	var errGlobal error
	var wg sync.WaitGroup
	wg.Go(func() {
		var in interner
		errGlobal = c.readPrivileges(ctx, nil, global, &in)
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
}

// privilegesOfQuery is privilegesQuery for one account, its grantee
// ('user'@'host') given twice. information_schema compares GRANTEE without
// case (utf8mb3_general_ci): the rows are filtered again as the whole read
// keys them (user exact, host lower-cased). databasePrivilegesOfQuery
// reads one user's rows of mysql.db (an index of the table's), filtered so
// too; whole rows, as they are few.
const (
	privilegesOfQuery = `SELECT GRANTEE, '*', '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ?`
	databasePrivilegesOfQuery = "SELECT * FROM mysql.db WHERE User = ?"
)

// grantee is a's GRANTEE as information_schema writes it.
func (a accountKey) grantee() string { return "'" + a.User + "'@'" + a.Host + "'" }

// holds reports whether a row of user and host (as stored) is acct's, as
// the whole read keys it; every row is when acct is nil.
func holds(acct *accountKey, user, host string) bool {
	return acct == nil || (user == acct.User && strings.ToLower(host) == acct.Host)
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

// readPrivileges adds the global and table-level privileges to out: every
// account's, or acct's alone when it is not nil.
func (c *conn) readPrivileges(ctx context.Context, acct *accountKey, out *grantStates, in *interner) error {
	q, args := c.queries.privileges, []any(nil)
	if acct != nil {
		g := acct.grantee()
		q, args = privilegesOfQuery, []any{g, g}
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
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
		if acct != nil && !holds(acct, string(user), string(host)) {
			continue
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
	return c.readDatabasePrivilegesWhole(ctx, nil, out, in)
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
// the result against information_schema.SCHEMA_PRIVILEGES. With acct not
// nil it reads acct's rows alone.
func (c *conn) readDatabasePrivilegesWhole(ctx context.Context, acct *accountKey, out *grantStates, in *interner) error {
	q, args := c.queries.wholeDB, []any(nil)
	if acct != nil {
		q, args = databasePrivilegesOfQuery, []any{acct.User}
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
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
		if acct != nil && !holds(acct, string(vals[user]), string(vals[host])) {
			continue
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

// history returns the declared grants of the bookkeeping database db,
// a's among them: the run's read of every grant, or of a's alone (see
// observation). Only a's entries may be looked at.
func (c *conn) history(ctx context.Context, env *reconciler.Env, db string, a accountKey) (*history, error) {
	return observe(ctx, c, env, pieceHistory+db, "", &a, func(ctx context.Context, acct *accountKey) (*history, error) {
		return c.readHistory(ctx, db, acct)
	})
}

// readHistory reads the declared grants of db: all, or acct's alone when
// it is not nil (the table's key begins with user and host, which it
// holds as fsgit wrote them, lower case).
func (c *conn) readHistory(ctx context.Context, db string, acct *accountKey) (*history, error) {
	n := 4
	q, args := "SELECT `user`, `host`, `db`, `tbl`, `privileges`, `grant_option` FROM "+quoteIdent(db)+"."+quoteIdent(historyTable), []any(nil)
	if acct == nil {
		n = int(c.sizes.history.Load())
	} else {
		q, args = q+" WHERE `user` = ? AND `host` = ?", []any{acct.User, acct.Host}
	}
	h := &history{db: db, m: make(map[grantKey]grantState, n)}
	rows, err := c.db.QueryContext(ctx, q, args...)
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
		if acct != nil && (string(user) != acct.User || string(host) != acct.Host) {
			continue // PAD SPACE: 'u ' = 'u'
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
	if acct == nil {
		c.sizes.history.Store(int64(len(h.m)))
	}
	return h, nil
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
