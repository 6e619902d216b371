package mariadb

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// denied fails unless q, run by a user's connection, is refused for lack
// of privileges (or because the user cannot see the database at all).
func denied(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	_, err := db.Exec(q)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1044 && me.Number != 1049) {
		t.Errorf("%s: got %v, want access denied", q, err)
	}
}

// lookAlike makes the database an underscore wildcard would reach:
// featureXstoreXonline for feature_store_online, with a secret table.
func lookAlike(t testing.TB, root *sql.DB, db string) string {
	t.Helper()
	other := strings.ReplaceAll(db, "_", "X")
	mustExec(t, root, "DROP DATABASE IF EXISTS "+quoteIdent(other))
	mustExec(t, root, "CREATE DATABASE "+quoteIdent(other))
	mustExec(t, root, "CREATE TABLE "+quoteIdent(other)+".secret_t (s VARCHAR(20))")
	mustExec(t, root, "INSERT INTO "+quoteIdent(other)+".secret_t VALUES ('do not read')")
	t.Cleanup(func() { _, _ = root.Exec("DROP DATABASE IF EXISTS " + quoteIdent(other)) })
	return other
}

// grantsOf returns SHOW GRANTS for an account, one line each.
func grantsOf(t testing.TB, root *sql.DB, acct string) []string {
	t.Helper()
	rows, err := root.Query("SHOW GRANTS FOR " + acct)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// A grant on feature_store_online.* is on that database only: the
// underscore is escaped in GRANT, so the user cannot read a look-alike
// database (featureXstoreXonline), and the second run is quiet.
func TestGrant_UnderscoreIsNotAWildcard(t *testing.T) {
	h := newHarness(t, srv)
	h.secrets["mariadb/wc_user"] = "wc-pw"
	root := srv.RootDB(t)
	const db = "wc_feature_store"
	clean(t, root, db, "wc_user@localhost")
	other := lookAlike(t, root, db)
	cat := onlineStore(h, db, "wc_user")

	allOutcome(t, h.run(cat...), reconciler.Created)

	fs := connectAs(t, srv, "wc_user", "wc-pw", "")
	mustExec(t, fs, "SELECT COUNT(*) FROM "+quoteIdent(db)+".latest_features")
	denied(t, fs, "SELECT * FROM "+quoteIdent(other)+".secret_t")
	denied(t, fs, "USE "+quoteIdent(other))
	g := grantsOf(t, root, "wc_user@localhost")
	if len(g) != 2 || !strings.Contains(g[1], "ON `wc\\_feature\\_store`.*") {
		t.Errorf("grants:\n%s", strings.Join(g, "\n"))
	}

	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
}

// A wildcard grant that an earlier fsgit made (unescaped, and recorded as
// declared) is revoked in favour of the escaped one, as a safe change; the
// look-alike database is closed and the next run is quiet. One made by hand
// (never declared) is a destructive revoke, held without allowDestroy.
func TestGrant_WildcardFromBeforeIsRevoked(t *testing.T) {
	h := newHarness(t, srv)
	h.secrets["mariadb/wo_user"] = "wo-pw"
	root := srv.RootDB(t)
	const db = "wo_feature_store"
	clean(t, root, db, "wo_user@localhost")
	other := lookAlike(t, root, db)
	cat := onlineStore(h, db, "wo_user")
	gid := "mariadb.grant:wo_user@localhost/" + db + ".*"

	// What the old code left: the account, the grant written unescaped,
	// and the declared-grants record of it.
	allOutcome(t, h.run(cat[0], cat[1], cat[3]), reconciler.Created)
	mustExec(t, root, "GRANT SELECT, INSERT, UPDATE, DELETE ON `"+db+"`.* TO wo_user@localhost")
	c, err := h.kinds.pools.get(Server{Socket: srv.Socket(), Port: 3306, AdminUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := c.readHistory(t.Context(), defaultBookkeeping, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := grantKey{User: "wo_user", Host: "localhost", Database: db, Table: "*"}
	if err := c.recordDeclared(t.Context(), reconciler.ID(gid), hist, k, setOf([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}), false); err != nil {
		t.Fatal(err)
	}
	fs := connectAs(t, srv, "wo_user", "wo-pw", "")
	mustExec(t, fs, "SELECT * FROM "+quoteIdent(other)+".secret_t") // the hole, before

	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.Created})
	for _, r := range rep.Results {
		if string(r.ID) == gid && (len(r.Changes) != 2 || r.Changes[1].Class != reconciler.Safe || !strings.Contains(r.Changes[1].Field, "wildcard")) {
			t.Errorf("changes: %+v", r.Changes)
		}
	}
	fs2 := connectAs(t, srv, "wo_user", "wo-pw", "")
	denied(t, fs2, "SELECT * FROM "+quoteIdent(other)+".secret_t")
	mustExec(t, fs2, "SELECT COUNT(*) FROM "+quoteIdent(db)+".latest_features")
	if g := grantsOf(t, root, "wo_user@localhost"); len(g) != 2 {
		t.Errorf("grants:\n%s", strings.Join(g, "\n"))
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// By hand, never declared: held.
	mustExec(t, root, "GRANT DROP ON `"+db+"`.* TO wo_user@localhost")
	rep = h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.PendingDestroy})
	// Allowed: revoked.
	cat[2].AllowDestroy = true
	wantOutcomes(t, h.run(cat...), map[string]reconciler.Outcome{gid: reconciler.Changed})
	if g := grantsOf(t, root, "wo_user@localhost"); len(g) != 2 {
		t.Errorf("grants after the held revoke ran:\n%s", strings.Join(g, "\n"))
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
}

func count(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func canLogin(s *mariadbtest.Server, user, pass string) error {
	db, err := sql.Open("mysql", s.DSN(user, pass, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Ping()
}

// A server as mariadb-install-db leaves it without --skip-test-db
// (anonymous accounts, the test database, grants to everyone on test and
// test\_%) converges to what mysql_secure_installation makes of it: a user
// declared at '%' can then log in over the local socket, nobody logs in
// anonymously, root still logs in through unix_socket, and the next run is
// quiet. Without allowDestroy the same changes are held.
func TestSecurity_UnsecuredInstallConverges(t *testing.T) {
	s := mariadbtest.StartWith(t, mariadbtest.Options{Unsecured: true})
	root := s.RootDB(t)
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''"); n < 1 {
		t.Fatalf("the unsecured server has %d anonymous accounts; the test needs some", n)
	}
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.db WHERE Db IN (?, ?)", "test", `test\_%`); n < 2 {
		t.Fatalf("the unsecured server has %d grants on test; the test needs them", n)
	}
	h := newHarness(t, s)
	h.secrets["mariadb/pct_user"] = "pct-pw"
	user := h.res("mariadb.user:pct_user@%", map[string]any{"user": "pct_user", "host": "%", "password": map[string]any{"secret": "mariadb/pct_user"}})
	sec := h.res("mariadb.security:mariadb", map[string]any{"removeAnonymousUsers": true, "removeTestDatabase": true, "rootUnixSocketOnly": true})

	// The user alone converges, and cannot log in over the socket:
	// ''@'localhost' is the closer match. This is the defect.
	allOutcome(t, h.run(user), reconciler.Created)
	if err := canLogin(s, "pct_user", "pct-pw"); err == nil {
		t.Fatal("pct_user@'%' logs in over the socket next to ''@'localhost': the test shows nothing")
	}

	// Not allowed to destroy: held, nothing written.
	quietly(t, root, func() {
		wantOutcomes(t, h.run(user, sec), map[string]reconciler.Outcome{"mariadb.security:mariadb": reconciler.PendingDestroy})
	})

	sec.AllowDestroy = true
	rep := h.run(user, sec)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.security:mariadb": reconciler.Changed, "mariadb.user:pct_user@%": reconciler.Unchanged})
	if err := canLogin(s, "pct_user", "pct-pw"); err != nil {
		t.Fatalf("pct_user@'%%' over the socket after the run: %v", err)
	}
	for _, u := range []string{"", "nobody"} {
		if err := canLogin(s, u, ""); err == nil {
			t.Errorf("user %q logs in without a password", u)
		}
	}
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''"); n != 0 {
		t.Errorf("%d anonymous accounts left", n)
	}
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.db WHERE Db IN (?, ?)", "test", `test\_%`); n != 0 {
		t.Errorf("%d grants on test left", n)
	}
	if n := count(t, root, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test'"); n != 0 {
		t.Error("database test left")
	}
	if err := canLogin(s, "root", ""); err != nil {
		t.Fatalf("root over unix_socket: %v", err)
	}
	quietly(t, root, func() { allOutcome(t, h.run(user, sec), reconciler.Unchanged) })

	// Root with a password, and root at another host: back to socket only.
	mustExec(t, root, "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('rootpw') OR unix_socket")
	mustExec(t, root, "CREATE USER root@'127.0.0.1' IDENTIFIED BY 'rootpw'")
	rep = h.run(user, sec)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.security:mariadb": reconciler.Changed})
	var priv string
	if err := root.QueryRow("SELECT Priv FROM mysql.global_priv WHERE User = 'root' AND Host = 'localhost'").Scan(&priv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(priv, `"plugin":"unix_socket"`) || strings.Contains(priv, "mysql_native_password") {
		t.Errorf("root@localhost after the run: %s", priv)
	}
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost'"); n != 0 {
		t.Errorf("%d root accounts at other hosts left", n)
	}
	quietly(t, root, func() { allOutcome(t, h.run(user, sec), reconciler.Unchanged) })
}

// A site can declare an anonymous account absent with mariadb.user, and
// only absent.
func TestUser_AnonymousAbsent(t *testing.T) {
	s := mariadbtest.StartWith(t, mariadbtest.Options{Unsecured: true})
	root := s.RootDB(t)
	h := newHarness(t, s)
	anon := h.res("mariadb.user:@localhost", map[string]any{"user": "", "host": "localhost", "ensure": "absent"}, allowDestroy)
	allOutcome(t, h.run(anon), reconciler.Deleted)
	if n := count(t, root, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = '' AND Host = 'localhost'"); n != 0 {
		t.Fatal("''@'localhost' left")
	}
	quietly(t, root, func() { allOutcome(t, h.run(anon), reconciler.Unchanged) })

	present := h.res("mariadb.user:@localhost", map[string]any{"user": "", "host": "localhost", "password": map[string]any{"secret": "x"}})
	if err := reconciler.NewTyped(&UserKind{}).Validate(&present); err == nil || !strings.Contains(err.Error(), "only be declared absent") {
		t.Fatalf("anonymous account present: %v", err)
	}
}

// MariaDB accepts names in any script; so does fsgit: created, granted
// (the grant escaped, the user reaching that database and not a
// look-alike), migrated, observed, and the second run is quiet.
func TestNames_NonASCII(t *testing.T) {
	for i, db := range []string{"fëature_ß", "特征库", "fe\u0301ature"} {
		user := []string{"uni_a", "uni_b", "uni_c"}[i]
		t.Run(db, func(t *testing.T) {
			h := newHarness(t, srv)
			h.secrets["mariadb/"+user] = "pw-" + user
			root := srv.RootDB(t)
			clean(t, root, db, user+"@localhost")
			other := ""
			if strings.Contains(db, "_") {
				other = lookAlike(t, root, db)
			}
			cat := onlineStore(h, db, user)
			allOutcome(t, h.run(cat...), reconciler.Created)
			fs := connectAs(t, srv, user, "pw-"+user, db)
			mustExec(t, fs, "INSERT INTO latest_features (entity_id, feature_name) VALUES ('e', 'f')")
			if other != "" {
				denied(t, fs, "SELECT * FROM "+quoteIdent(other)+".secret_t")
			}
			if n := count(t, root, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db); n != 1 {
				t.Fatalf("database %q: %d", db, n)
			}
			quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
		})
	}
}

// Names beyond MariaDB's limits, or with characters it refuses, are
// refused before any SQL with a message that says so.
func TestNames_Limits(t *testing.T) {
	long := strings.Repeat("d", 65)
	for _, tc := range []struct{ id, want string }{
		{"mariadb.database:" + strings.Repeat("d", 64), ""},
		{"mariadb.database:" + strings.Repeat("特", 64), ""},
		{"mariadb.database:" + long, "longer than 64 characters, MariaDB's limit"},
		{"mariadb.database:" + strings.Repeat("特", 65), "longer than 64 characters, MariaDB's limit"},
		{"mariadb.database:x\U0001F600", "beyond U+FFFF"},
		{"mariadb.database:a-b", "not a valid name"},
		{"mariadb.user:" + strings.Repeat("u", 81) + "@localhost", "longer than 80 characters"},
		{"mariadb.user:u@" + strings.Repeat("h", 256), "longer than 255 characters"},
		{"mariadb.grant:u@localhost/" + long + ".*", "longer than 64 characters, MariaDB's limit"},
		{"mariadb.grant:u@localhost/d." + long, "longer than 64 characters, MariaDB's limit"},
	} {
		r := reconciler.Resource{ID: reconciler.ID(tc.id)}
		name := r.Name()
		spec := map[string]any{"server": map[string]any{"socket": "/run/x.sock"}}
		var k reconciler.Kind
		switch r.Kind() {
		case "mariadb.database":
			k, spec["name"] = reconciler.NewTyped(&DatabaseKind{}), name
		case "mariadb.user":
			u, h, _ := strings.Cut(name, "@")
			k, spec["user"], spec["host"], spec["password"] = reconciler.NewTyped(&UserKind{}), u, h, map[string]any{"secret": "x"}
		case "mariadb.grant":
			acct, obj, _ := strings.Cut(name, "/")
			u, h, _ := strings.Cut(acct, "@")
			d, tb, _ := strings.Cut(obj, ".")
			k, spec["user"], spec["host"], spec["database"], spec["table"], spec["privileges"] = reconciler.NewTyped(&GrantKind{}), u, h, d, tb, []string{"SELECT"}
		}
		schemaDefaults(tc.id, spec)
		r.Spec, _ = json.Marshal(spec)
		err := k.Validate(&r)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.id, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.id, err, tc.want)
		}
	}
}

// The site names fsgit's bookkeeping database: the declared grants go
// there, and a narrowing is still classed by them.
func TestGrant_BookkeepingDatabaseNamed(t *testing.T) {
	h := newHarness(t, srv)
	h.secrets["mariadb/bk_user"] = "bk-pw"
	root := srv.RootDB(t)
	clean(t, root, "bk_db", "bk_user@localhost", "site_books")
	srvSpec := map[string]any{"socket": srv.Socket(), "port": 3306, "adminUser": "root", "bookkeepingDatabase": "site_books"}
	cat := onlineStore(h, "bk_db", "bk_user")
	for i := range cat {
		var m map[string]any
		_ = json.Unmarshal(cat[i].Spec, &m)
		m["server"] = srvSpec
		cat[i].Spec, _ = json.Marshal(m)
	}
	allOutcome(t, h.run(cat...), reconciler.Created)
	if n := count(t, root, "SELECT COUNT(*) FROM site_books.declared_grants WHERE user = 'bk_user'"); n != 1 {
		t.Fatalf("%d rows in site_books.declared_grants", n)
	}
	if n := count(t, root, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fsgit' AND TABLE_NAME = 'declared_grants'"); n > 0 {
		if m := count(t, root, "SELECT COUNT(*) FROM fsgit.declared_grants WHERE user = 'bk_user'"); m != 0 {
			t.Fatal("the grant was recorded in fsgit.declared_grants too")
		}
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// A narrowing of what was declared is safe: it runs without allowDestroy.
	var m map[string]any
	_ = json.Unmarshal(cat[2].Spec, &m)
	m["privileges"] = []string{"SELECT"}
	cat[2].Spec, _ = json.Marshal(m)
	wantOutcomes(t, h.run(cat...), map[string]reconciler.Outcome{"mariadb.grant:bk_user@localhost/bk_db.*": reconciler.Changed})
}

// escapeDBPattern and parseDBPattern agree: an escaped name reads back as
// that one database; an unescaped _ or % reads as a wildcard.
func TestDBPattern(t *testing.T) {
	for _, name := range []string{"feature_store_online", "a%b", "plain", "fëature_ß", "特征库", `back\slash`, "_"} {
		got, wild := parseDBPattern(escapeDBPattern(name))
		if got != name || wild {
			t.Errorf("%q: escaped %q reads back as %q (wildcard %v)", name, escapeDBPattern(name), got, wild)
		}
	}
	for _, p := range []string{"feature_store_online", "test\\_%", "%", "a_"} {
		if got, wild := parseDBPattern(p); !wild || got != p {
			t.Errorf("%q: read as %q, wildcard %v; want the pattern itself, wildcard", p, got, wild)
		}
	}
	if got := level("feature_store_online", "*"); got != "`feature\\_store\\_online`.*" {
		t.Errorf("database level: %s", got)
	}
	if got := level("feature_store_online", "t_1"); got != "`feature_store_online`.`t_1`" {
		t.Errorf("table level (literal, not escaped): %s", got)
	}
}

// mariadb.security refuses to lock out fsgit's own admin connection.
func TestSecurity_RefusesToLockOutItsOwnConnection(t *testing.T) {
	spec, _ := json.Marshal(map[string]any{"rootUnixSocketOnly": true, "server": map[string]any{"host": "db", "port": 3306, "adminUser": "root", "adminPassword": map[string]any{"secret": "mariadb/root"}}})
	r := reconciler.Resource{ID: "mariadb.security:mariadb", Spec: spec}
	if err := reconciler.NewTyped(&SecurityKind{}).Validate(&r); err == nil || !strings.Contains(err.Error(), "lock out") {
		t.Fatalf("got %v", err)
	}
	spec, _ = json.Marshal(map[string]any{"rootUnixSocketOnly": false, "server": map[string]any{"host": "db", "port": 3306, "adminUser": "root", "adminPassword": map[string]any{"secret": "mariadb/root"}}})
	r.Spec = spec
	if err := reconciler.NewTyped(&SecurityKind{}).Validate(&r); err != nil {
		t.Fatal(err)
	}
}
