package mariadb

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
)

// showGrants renders what a read found, a sorted line per level, for
// comparing two reads.
func showGrants(m map[grantKey]*grantState) string {
	var lines []string
	for key, st := range m {
		lines = append(lines, fmt.Sprintf("%s@%s %s.%s wildcard=%v: %s grant=%v",
			key.User, key.Host, key.Database, key.Table, key.Wildcard, strings.Join(st.Privs.list(), ","), st.GrantOption))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// readDB reads mysql.db through c both ways: compactly (ok false when the
// compact read does not trust the server's mysql.db) and whole.
func readDB(t *testing.T, c *conn) (compact map[grantKey]*grantState, ok bool, whole map[grantKey]*grantState) {
	t.Helper()
	cg, wg := newGrantStates(0), newGrantStates(0)
	var in interner
	ok, err := c.readDatabasePrivilegesCompact(t.Context(), cg, &in)
	if err != nil {
		t.Fatalf("compact read: %v", err)
	}
	if err := c.readDatabasePrivilegesWhole(t.Context(), nil, wg, &in); err != nil {
		t.Fatalf("whole read: %v", err)
	}
	return cg.m, ok, wg.m
}

// TestDatabasePrivileges_CompactAsWhole: on the MariaDB fsgit is tested
// against, mysql.db is read compactly (one Y/N string a row), and that
// reading is the whole one's: every privilege column, the grant option,
// escaped and wildcard names, hosts in capitals, an anonymous account.
func TestDatabasePrivileges_CompactAsWhole(t *testing.T) {
	root := srv.RootDB(t)
	clean(t, root, "rc_u@localhost", "rc_v@%", "@rc.example")
	t.Cleanup(func() { clean(t, root, "rc_u@localhost", "rc_v@%", "@rc.example") })
	mustExec(t, root, "CREATE USER rc_u@LocalHost")
	mustExec(t, root, "CREATE USER rc_v@'%'")
	// An anonymous account: its empty User is not the check row's NULL.
	mustExec(t, root, "CREATE USER ''@'rc.example'")
	for _, q := range []string{
		"GRANT SELECT ON `rc\\_anon`.* TO ''@'rc.example'",
		"GRANT SELECT, INSERT ON `rc\\_a\\_b`.* TO rc_u@localhost",
		"GRANT ALL PRIVILEGES ON `rc_a%`.* TO rc_u@localhost WITH GRANT OPTION",
		"GRANT USAGE ON `rc\\_other`.* TO rc_v@'%' WITH GRANT OPTION",
		"GRANT SHOW VIEW, CREATE TEMPORARY TABLES, DELETE HISTORY, LOCK TABLES, EXECUTE, EVENT ON `rc\\_a\\_b`.* TO rc_v@'%'",
	} {
		mustExec(t, root, q)
	}
	c := rootConn(t, srv)
	compact, ok, whole := readDB(t, c)
	if !ok {
		t.Fatalf("the compact read does not take this server's mysql.db (columns %s)", compactDBQuery().columns)
	}
	if g, w := showGrants(compact), showGrants(whole); g != w {
		t.Fatalf("compact read:\n%s\n\nwhole read:\n%s", g, w)
	}
	if st := compact[grantKey{User: "", Host: "rc.example", Database: "rc_anon", Table: "*"}]; st == nil || st.Privs.String() != "[SELECT]" {
		t.Fatalf("anonymous account's grant: %+v", st)
	}
	st := compact[grantKey{User: "rc_u", Host: "localhost", Database: "rc_a%", Table: "*", Wildcard: true}]
	if st == nil || !st.GrantOption || !st.Privs.isAll("rc_a%", "*") {
		t.Fatalf("ALL PRIVILEGES WITH GRANT OPTION on the pattern rc_a%%: %+v", st)
	}
}

// TestDatabasePrivileges_OtherServerVersion: a mysql.db with a column
// fsgit's compact read does not know (a newer server's privilege), or
// without one it knows (an older server), is read whole: nothing is
// missed and nothing misread.
func TestDatabasePrivileges_OtherServerVersion(t *testing.T) {
	s := mariadbtest.Start(t)
	root := s.RootDB(t)
	mustExec(t, root, "CREATE USER ov_u@localhost")
	mustExec(t, root, "GRANT SELECT, DELETE HISTORY ON `ov\\_db`.* TO ov_u@localhost")
	c := rootConn(t, s)
	key := grantKey{User: "ov_u", Host: "localhost", Database: "ov_db", Table: "*"}

	// Newer: MariaDB 11.3's SHOW CREATE ROUTINE, held.
	mustExec(t, root, "ALTER TABLE mysql.db ADD COLUMN Show_create_routine_priv ENUM('N','Y') CHARACTER SET utf8mb3 NOT NULL DEFAULT 'N'")
	mustExec(t, root, "UPDATE mysql.db SET Show_create_routine_priv = 'Y' WHERE User = 'ov_u'")
	if _, ok, _ := readDB(t, c); ok {
		t.Fatal("compact read trusted a mysql.db with another column")
	}
	got, err := c.privileges(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.m[key]; st == nil || st.Privs.String() != "[SELECT DELETE HISTORY SHOW CREATE ROUTINE]" {
		t.Fatalf("newer mysql.db: %+v", st)
	}

	// Older: no Delete_history_priv (MariaDB before 10.3.4).
	mustExec(t, root, "ALTER TABLE mysql.db DROP COLUMN Show_create_routine_priv, DROP COLUMN Delete_history_priv")
	if _, ok, _ := readDB(t, c); ok {
		t.Fatal("compact read trusted a mysql.db without Delete_history_priv")
	}
	got, err = c.privileges(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.m[key]; st == nil || st.Privs.String() != "[SELECT]" {
		t.Fatalf("older mysql.db: %+v", st)
	}
}

// rootConn returns a pool to s as root, closed with the test.
func rootConn(t *testing.T, s *mariadbtest.Server) *conn {
	t.Helper()
	k := New()
	t.Cleanup(func() { _ = k.Close() })
	c, err := k.pools.get(Server{Socket: s.Socket(), Port: 3306, AdminUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// failAfter900 is an expression that is 'NO' for the first 899 rows of
// mysql.seq_1_to_1000 and then fails (ER_SUBQUERY_NO_1_ROW): a read that
// has decoded rows when the server reports an error.
const failAfter900 = "IF(seq < 900, 'NO', (SELECT 'YES' UNION ALL SELECT 'NO'))"

// TestPrivileges_ReadFailsMidway: the privilege reads run at once; when
// one of them fails after rows came in, the grant's plan fails (its
// result names the resource) saying which read and why, and nothing is planned from what was
// read: no statement runs, even where what was read alone would plan one
// (here, the grants the account holds are in none of the reads that
// succeed, or come after the failure).
func TestPrivileges_ReadFailsMidway(t *testing.T) {
	root := srv.RootDB(t)
	for _, tc := range []struct {
		name, read string
		// break_ makes the read fail.
		break_ func(t *testing.T, c *conn, spec map[string]any)
	}{
		{"global and table privileges", "read privileges", func(t *testing.T, c *conn, _ map[string]any) {
			c.queries.privileges = "SELECT CONCAT('''rf', seq, '''@''h'''), '*', '*', 'SELECT', " + failAfter900 + " FROM mysql.seq_1_to_1000"
		}},
		{"database privileges", "read database privileges", func(t *testing.T, c *conn, _ map[string]any) {
			c.queries.compactDB = false
			c.queries.wholeDB = "SELECT CONCAT('rf', seq) AS User, 'h' AS Host, 'rf_db' AS Db, 'Y' AS Select_priv, " + failAfter900 + " AS Grant_priv FROM mysql.seq_1_to_1000"
		}},
		{"declared grants", "read declared grants", func(t *testing.T, c *conn, spec map[string]any) {
			clean(t, root, "rf_books")
			t.Cleanup(func() { clean(t, root, "rf_books") })
			mustExec(t, root, "CREATE DATABASE rf_books")
			mustExec(t, root, "CREATE VIEW rf_books.declared_grants AS SELECT CONCAT('rf', seq) AS `user`, 'h' AS `host`, 'rf_db' AS `db`, '*' AS `tbl`, "+
				failAfter900+" AS `privileges`, 0 AS `grant_option` FROM rf_books.seq_1_to_1000")
			spec["server"].(map[string]any)["bookkeepingDatabase"] = "rf_books"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean(t, root, "rf_u@localhost")
			t.Cleanup(func() { clean(t, root, "rf_u@localhost") })
			mustExec(t, root, "CREATE USER rf_u@localhost")
			// Held, not declared: a plan made without this read would
			// revoke or grant something.
			mustExec(t, root, "GRANT INSERT ON `rf\\_db`.* TO rf_u@localhost")
			mustExec(t, root, "GRANT SELECT ON *.* TO rf_u@localhost")

			h := newHarness(t, srv)
			spec := map[string]any{"user": "rf_u", "host": "localhost", "database": "rf_db", "privileges": []string{"SELECT"}}
			schemaDefaults("mariadb.grant:x", spec)
			spec["server"] = map[string]any{"socket": srv.Socket(), "port": 3306, "adminUser": "root"}
			c, err := h.kinds.pools.get(Server{Socket: srv.Socket(), Port: 3306, AdminUser: "root"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(t, c, spec)
			id := "mariadb.grant:rf_u@localhost/rf_db.*"
			g := h.res(id, spec, allowDestroy)

			var rep *reconciler.Report
			quietly(t, root, func() { rep = h.run(g) })
			if len(rep.Results) != 1 || rep.Results[0].ID != reconciler.ID(id) || rep.Results[0].Outcome != reconciler.Failed {
				t.Fatalf("want the grant failed:\n%s", outcomes(rep))
			}
			msg := rep.Results[0].Error
			for _, want := range []string{tc.read + ": ", "Error 1242"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
		})
	}
}

// TestGrant_QuietPlanReadsNoHistory: the declared grants only class
// revokes, so a grant that holds what it declares is planned without
// them; one that changes reads them (and fails when they cannot be read,
// as TestPrivileges_ReadFailsMidway shows).
func TestGrant_QuietPlanReadsNoHistory(t *testing.T) {
	root := srv.RootDB(t)
	clean(t, root, "rq_u@localhost", "rq_books")
	t.Cleanup(func() { clean(t, root, "rq_u@localhost", "rq_books") })
	mustExec(t, root, "CREATE USER rq_u@localhost")
	mustExec(t, root, "GRANT SELECT ON `rq\\_db`.* TO rq_u@localhost")
	mustExec(t, root, "CREATE DATABASE rq_books")
	mustExec(t, root, "CREATE VIEW rq_books.declared_grants AS SELECT CONCAT('rq', seq) AS `user`, 'h' AS `host`, 'rq_db' AS `db`, '*' AS `tbl`, "+
		failAfter900+" AS `privileges`, 0 AS `grant_option` FROM rq_books.seq_1_to_1000")

	h := newHarness(t, srv)
	grant := func(privs ...string) reconciler.Resource {
		return h.res("mariadb.grant:rq_u@localhost/rq_db.*", map[string]any{
			"user": "rq_u", "host": "localhost", "database": "rq_db", "privileges": privs,
			"server": map[string]any{"socket": srv.Socket(), "bookkeepingDatabase": "rq_books"},
		})
	}
	quietly(t, root, func() { allOutcome(t, h.run(grant("SELECT")), reconciler.Unchanged) })
	quietly(t, root, func() { allOutcome(t, h.run(grant("SELECT", "INSERT")), reconciler.Failed) })
}

// TestNameChecks_AsTheRegexps: the checks that spare the regexps accept
// exactly what identRE, userRE and hostRE accept.
func TestNameChecks_AsTheRegexps(t *testing.T) {
	names := []string{"", "a", "A", "_", "$", "1", "a1", "1a", "a$", "$a", "a-b", "a.b", "a b", "a%", "%", "a_b",
		"fëature_ß", "特征库", "é", "ß1", "a\u0301", "\u0301a", "a\x00", "\xff", "a\xffb", "10.0.0.%", "::1", "10.0.0.0/255.255.255.0",
		"bench1000_u999", "feature_store_online", "Z9", "z$9_", "a:b", "a/b", "a'b", "a`b", "a\\b", "١٢٣", "a١٢٣"}
	for c := 0; c < 256; c++ {
		names = append(names, string(rune(c)), "a"+string([]byte{byte(c)}), "a"+string(rune(c)))
	}
	for _, n := range names {
		if got, want := identOK(n), utf8.ValidString(n) && identRE().MatchString(n); got != want {
			t.Errorf("identOK(%q) = %v, identRE says %v", n, got, want)
		}
		if got, want := asciiOK(n, userByte), userRE().MatchString(n); got != want {
			t.Errorf("user %q: %v, userRE says %v", n, got, want)
		}
		if got, want := asciiOK(n, hostByte), hostRE().MatchString(n); got != want {
			t.Errorf("host %q: %v, hostRE says %v", n, got, want)
		}
	}
}
