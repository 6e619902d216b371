package mariadb

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// seedSQL is the seed's schema for the online store.
const seedSQL = "CREATE TABLE `latest_features` (\n" +
	"`entity_id` VARCHAR(255) NOT NULL,\n" +
	"`feature_name` VARCHAR(255) NOT NULL,\n" +
	"`feature_value` BLOB,\n" +
	"`updated_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,\n" +
	"PRIMARY KEY (`entity_id`, `feature_name`)\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"

// onlineStore is what the mariadb_server profile of the example site
// declares: the database, fs_user, its grant and the seed's schema.
func onlineStore(h *harness, db, user string, grantOpts ...func(*reconciler.Resource)) []reconciler.Resource {
	dbID := "mariadb.database:" + db
	userID := "mariadb.user:" + user + "@localhost"
	return []reconciler.Resource{
		h.res(dbID, map[string]any{"name": db, "charset": "utf8mb4", "collation": "utf8mb4_general_ci"}),
		h.res(userID, map[string]any{"user": user, "host": "localhost", "password": map[string]any{"secret": "mariadb/" + user}}),
		h.res("mariadb.grant:"+user+"@localhost/"+db+".*", map[string]any{
			"user": user, "host": "localhost", "database": db, "table": "*",
			"privileges": []string{"SELECT", "INSERT", "UPDATE", "DELETE"},
		}, append([]func(*reconciler.Resource){requires(userID, dbID)}, grantOpts...)...),
		h.res("mariadb.migration:"+db, map[string]any{"database": db, "migrations": []map[string]any{
			{"version": 1, "name": "latest_features", "sql": seedSQL},
		}}, requires(dbID)),
	}
}

func TestOnlineStore_CreateFromEmptyThenQuiet(t *testing.T) {
	h := newHarness(t, srv)
	h.secrets["mariadb/fs_user"] = "s3cret-1"
	root := srv.RootDB(t)
	clean(t, root, "feature_store_online", "fs_user@localhost")
	cat := onlineStore(h, "feature_store_online", "fs_user")

	rep := h.run(cat...)
	allOutcome(t, rep, reconciler.Created)

	// fs_user can SELECT/INSERT/UPDATE/DELETE on the store and nothing else.
	fs := connectAs(t, srv, "fs_user", "s3cret-1", "feature_store_online")
	for _, q := range []string{
		"INSERT INTO latest_features (entity_id, feature_name, feature_value) VALUES ('e1', 'f1', 'v')",
		"UPDATE latest_features SET feature_value = 'w' WHERE entity_id = 'e1'",
		"SELECT COUNT(*) FROM latest_features",
		"DELETE FROM latest_features WHERE entity_id = 'e1'",
	} {
		mustExec(t, fs, q)
	}
	for _, q := range []string{
		"CREATE TABLE t2 (a INT)",
		"DROP TABLE latest_features",
		"ALTER TABLE latest_features ADD COLUMN x INT",
		"SELECT * FROM mysql.user",
		"CREATE DATABASE other",
	} {
		_, err := fs.Exec(q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1044 && me.Number != 1227) {
			t.Errorf("fs_user: %s: got %v, want access denied", q, err)
		}
	}
	var grants []string
	rows, err := root.Query("SHOW GRANTS FOR fs_user@localhost")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		_ = rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	if len(grants) != 2 || !strings.HasPrefix(grants[1], "GRANT SELECT, INSERT, UPDATE, DELETE ON `feature\\_store\\_online`.* TO `fs_user`@`localhost`") {
		t.Errorf("grants of fs_user:\n%s", strings.Join(grants, "\n"))
	}

	// The second run: every resource unchanged, and no statement that
	// writes reaches the server (global counters, all connections).
	quietly(t, root, func() {
		rep = h.run(cat...)
	})
	allOutcome(t, rep, reconciler.Unchanged)

	// A third run with a fresh node memory and fresh pools is quiet too:
	// quietness comes from the server, not from what fsgit remembers.
	h2 := newHarness(t, srv)
	h2.secrets = h.secrets
	quietly(t, root, func() {
		rep = h2.run(onlineStore(h2, "feature_store_online", "fs_user")...)
	})
	allOutcome(t, rep, reconciler.Unchanged)
}

func TestOnlineStore_Noop(t *testing.T) {
	h := newHarness(t, srv)
	h.secrets["mariadb/noop_user"] = "pw"
	root := srv.RootDB(t)
	clean(t, root, "noop_db", "noop_user@localhost")
	var rep *reconciler.Report
	quietly(t, root, func() {
		rep = h.runOpts(true, onlineStore(h, "noop_db", "noop_user")...)
	})
	// In noop everything would be created; nothing is.
	for _, r := range rep.Results {
		if r.Outcome != reconciler.Drifted && r.Outcome != reconciler.Skipped {
			t.Errorf("%s: %s in noop", r.ID, r.Outcome)
		}
	}
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'noop_user'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("noop created the user: %d %v", n, err)
	}
}

func TestDatabase_Charset(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "charset_db")
	db := h.res("mariadb.database:charset_db", map[string]any{"name": "charset_db", "charset": "utf8", "collation": "utf8_general_ci"})
	allOutcome(t, h.run(db), reconciler.Created)
	quietly(t, root, func() { allOutcome(t, h.run(db), reconciler.Unchanged) })

	db = h.res("mariadb.database:charset_db", map[string]any{"name": "charset_db", "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"})
	rep := h.run(db)
	allOutcome(t, rep, reconciler.Changed)
	var cs, co string
	if err := root.QueryRow("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'charset_db'").Scan(&cs, &co); err != nil {
		t.Fatal(err)
	}
	if cs != "utf8mb4" || co != "utf8mb4_unicode_ci" {
		t.Fatalf("charset %s collation %s", cs, co)
	}
	quietly(t, root, func() { allOutcome(t, h.run(db), reconciler.Unchanged) })
}

func TestUser_PasswordRotation(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "rot@localhost")
	h.secrets["mariadb/rot"] = "first"
	u := h.res("mariadb.user:rot@localhost", map[string]any{"user": "rot", "password": map[string]any{"secret": "mariadb/rot"}})
	allOutcome(t, h.run(u), reconciler.Created)
	if err := connectAs(t, srv, "rot", "first", "").Ping(); err != nil {
		t.Fatalf("login with the first password: %v", err)
	}

	h.secrets["mariadb/rot"] = "second"
	rep := h.run(u)
	allOutcome(t, rep, reconciler.Changed)
	for _, c := range rep.Results[0].Changes {
		if strings.Contains(c.Before+c.After, "second") || strings.Contains(c.Before+c.After, "first") {
			t.Fatalf("a password shows in the plan: %+v", c)
		}
	}
	if err := connectAs(t, srv, "rot", "second", "").Ping(); err != nil {
		t.Fatalf("login with the rotated password: %v", err)
	}
	if err := connectAs(t, srv, "rot", "first", "").Ping(); err == nil {
		t.Fatal("the old password still works")
	}
	quietly(t, root, func() { allOutcome(t, h.run(u), reconciler.Unchanged) })

	// A password changed by hand is drift, found by hash and corrected.
	mustExec(t, root, "SET PASSWORD FOR rot@localhost = PASSWORD('by-hand')")
	allOutcome(t, h.run(u), reconciler.Changed)
	if err := connectAs(t, srv, "rot", "second", "").Ping(); err != nil {
		t.Fatalf("login after correction: %v", err)
	}
}

func TestUser_PluginsAndLimits(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "ed@%", "sock@localhost")
	mustExec(t, root, "INSTALL SONAME 'auth_ed25519'")
	t.Cleanup(func() { _, _ = root.Exec("UNINSTALL SONAME 'auth_ed25519'") })
	h.secrets["mariadb/ed"] = "ed-pass"
	cat := []reconciler.Resource{
		h.res("mariadb.user:ed@%", map[string]any{"user": "ed", "host": "%", "plugin": "ed25519", "password": map[string]any{"secret": "mariadb/ed"},
			"limits": map[string]any{"maxQueriesPerHour": 1000, "maxUserConnections": 5}}),
		h.res("mariadb.user:sock@localhost", map[string]any{"user": "sock", "plugin": "unix_socket",
			"limits": map[string]any{"maxConnectionsPerHour": 7, "maxUpdatesPerHour": 9}}),
	}
	allOutcome(t, h.run(cat...), reconciler.Created)
	if err := connectAs(t, srv, "ed", "ed-pass", "").Ping(); err != nil {
		t.Fatalf("ed25519 login: %v", err)
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// Limits changed by hand are drift.
	mustExec(t, root, "ALTER USER sock@localhost WITH MAX_UPDATES_PER_HOUR 1")
	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.user:sock@localhost": reconciler.Changed, "mariadb.user:ed@%": reconciler.Unchanged})
	var n int64
	if err := root.QueryRow("SELECT max_updates FROM mysql.user WHERE User = 'sock'").Scan(&n); err != nil || n != 9 {
		t.Fatalf("max_updates %d %v", n, err)
	}
}

func TestAuthString(t *testing.T) {
	root := srv.RootDB(t)
	for _, pw := range []string{"", "secret", "pässwörd with spaces", strings.Repeat("x", 300)} {
		var want string
		if err := root.QueryRow("SELECT PASSWORD(?)", pw).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got, _ := authString(pluginNative, []byte(pw)); got != want {
			t.Errorf("native %q: %s, server %s", pw, got, want)
		}
	}
	// ed25519: the server's own computation, read back from global_priv.
	mustExec(t, root, "INSTALL SONAME 'auth_ed25519'")
	t.Cleanup(func() { _, _ = root.Exec("UNINSTALL SONAME 'auth_ed25519'") })
	for i, pw := range []string{"secret", "another one", strings.Repeat("y", 100)} {
		user := "edcheck" + string(rune('a'+i))
		// Test passwords hold no quote: inlined, as PASSWORD() takes no placeholder here.
		mustExec(t, root, "CREATE USER "+user+"@localhost IDENTIFIED VIA ed25519 USING PASSWORD('"+pw+"')")
		var want string
		if err := root.QueryRow("SELECT JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv WHERE User = ?", user).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got, _ := authString(pluginEd, []byte(pw)); got != want {
			t.Errorf("ed25519 %q: %s, server %s", pw, got, want)
		}
		mustExec(t, root, "DROP USER "+user+"@localhost")
	}
}

// TestPrivilegeLists checks the ALL PRIVILEGES lists and aliases against
// the real server: GRANT ALL at each level must read back as the list.
func TestPrivilegeLists(t *testing.T) {
	root := srv.RootDB(t)
	mustExec(t, root, "CREATE DATABASE IF NOT EXISTS privlists")
	mustExec(t, root, "CREATE TABLE IF NOT EXISTS privlists.t (a INT)")
	mustExec(t, root, "CREATE USER IF NOT EXISTS privlists@localhost")
	t.Cleanup(func() { _, _ = root.Exec("DROP USER privlists@localhost") })
	k := New()
	t.Cleanup(func() { _ = k.Close() })
	c, err := k.pools.get(Server{Socket: srv.Socket(), Port: 3306, AdminUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, lv := range []struct{ db, table string }{{"*", "*"}, {"privlists", "*"}, {"privlists", "t"}} {
		mustExec(t, root, "GRANT ALL PRIVILEGES ON "+level(lv.db, lv.table)+" TO privlists@localhost")
		all, err := c.privileges(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := all.m[grantKey{User: "privlists", Host: "localhost", Database: lv.db, Table: lv.table}]
		want := levelPrivileges(lv.db, lv.table)
		if got == nil || got.Privs.len() != len(want) || !got.Privs.isAll(lv.db, lv.table) {
			t.Errorf("level %s.%s: server has %v, fsgit's list is %v", lv.db, lv.table, got, want)
		}
		mustExec(t, root, "REVOKE ALL PRIVILEGES ON "+level(lv.db, lv.table)+" FROM privlists@localhost")
	}
	for alias, name := range privilegeAliases {
		if name == "ALL PRIVILEGES" {
			continue
		}
		mustExec(t, root, "GRANT "+alias+" ON *.* TO privlists@localhost")
		all, err := c.privileges(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := all.m[grantKey{User: "privlists", Host: "localhost", Database: "*", Table: "*"}]; got == nil || !got.Privs.has(name) || got.Privs.len() != 1 {
			t.Errorf("alias %s: server has %v, want %s", alias, got, name)
		}
		mustExec(t, root, "REVOKE ALL PRIVILEGES ON *.* FROM privlists@localhost")
	}
}

func TestGrant_Levels(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "lv_db", "lv@%")
	mustExec(t, root, "CREATE DATABASE lv_db")
	mustExec(t, root, "CREATE TABLE lv_db.t (a INT)")
	h.secrets["mariadb/lv"] = "pw"
	u := h.res("mariadb.user:lv@%", map[string]any{"user": "lv", "host": "%", "password": map[string]any{"secret": "mariadb/lv"}})
	cat := []reconciler.Resource{u,
		h.res("mariadb.grant:lv@%/*.*", map[string]any{"user": "lv", "host": "%", "database": "*", "privileges": []string{"process", "Replication Client", "SHOW  DATABASES"}}, requires(string(u.ID))),
		h.res("mariadb.grant:lv@%/lv_db.*", map[string]any{"user": "lv", "host": "%", "database": "lv_db", "privileges": []string{"ALL"}, "grantOption": true}, requires(string(u.ID))),
		h.res("mariadb.grant:lv@%/lv_db.t", map[string]any{"user": "lv", "host": "%", "database": "lv_db", "table": "t", "privileges": []string{"SELECT", "ALL PRIVILEGES"}}, requires(string(u.ID))),
	}
	allOutcome(t, h.run(cat...), reconciler.Created)
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// Narrowing in the CUE revokes what the CUE had declared: safe.
	cat[3] = h.res("mariadb.grant:lv@%/lv_db.t", map[string]any{"user": "lv", "host": "%", "database": "lv_db", "table": "t", "privileges": []string{"SELECT"}}, requires(string(u.ID)))
	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.grant:lv@%/lv_db.t": reconciler.Changed})
	// Dropping the grant option declared before is safe too.
	cat[2] = h.res("mariadb.grant:lv@%/lv_db.*", map[string]any{"user": "lv", "host": "%", "database": "lv_db", "privileges": []string{"ALL"}}, requires(string(u.ID)))
	rep = h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.grant:lv@%/lv_db.*": reconciler.Changed})
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	var g string
	if err := root.QueryRow("SHOW GRANTS FOR lv@'%'").Scan(&g); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g, "GRANT PROCESS, SHOW DATABASES, BINLOG MONITOR ON *.*") {
		t.Errorf("global grant: %s", g)
	}
}

// TestGrant_Drift covers grants changed by hand: a revoked privilege is
// restored; a privilege granted by hand is destructive to revoke (the CUE
// never declared it): held without allowDestroy, revoked with it, only
// reported in detect mode.
func TestGrant_Drift(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "drift_db", "dr_user@localhost")
	h.secrets["mariadb/dr_user"] = "pw"
	cat := onlineStore(h, "drift_db", "dr_user")
	gid := "mariadb.grant:dr_user@localhost/drift_db.*"
	allOutcome(t, h.run(cat...), reconciler.Created)

	// Revoked by hand: restored.
	mustExec(t, root, "REVOKE DELETE, UPDATE ON `drift\\_db`.* FROM dr_user@localhost")
	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.Changed})
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// Granted by hand, no allowDestroy: pending destroy, nothing revoked.
	mustExec(t, root, "GRANT DROP, CREATE ON `drift\\_db`.* TO dr_user@localhost")
	quietly(t, root, func() { rep = h.run(cat...) })
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.PendingDestroy})
	if !hasPriv(t, root, "dr_user", "drift_db", "DROP") {
		t.Fatal("DROP revoked without allowDestroy")
	}

	// Detect mode: only reported.
	quietly(t, root, func() { rep = h.run(onlineStore(h, "drift_db", "dr_user", detect)...) })
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.Drifted})

	// allowDestroy on the grant: revoked.
	rep = h.run(onlineStore(h, "drift_db", "dr_user", allowDestroy)...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.Changed})
	if hasPriv(t, root, "dr_user", "drift_db", "DROP") || hasPriv(t, root, "dr_user", "drift_db", "CREATE") {
		t.Fatal("hand-granted privileges kept with allowDestroy")
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// A grant option added by hand is drift too.
	mustExec(t, root, "GRANT SELECT ON `drift\\_db`.* TO dr_user@localhost WITH GRANT OPTION")
	rep = h.run(onlineStore(h, "drift_db", "dr_user", allowDestroy)...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{gid: reconciler.Changed})
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
}

// hasPriv reports whether user@localhost holds priv on database.*.
func hasPriv(t testing.TB, db *sql.DB, user, database, priv string) bool {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND PRIVILEGE_TYPE = ?",
		"'"+user+"'@'localhost'", escapeDBPattern(database), priv).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}
