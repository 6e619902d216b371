package mariadb

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

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
	c, err := h.kinds.pools.get(Server{Socket: srv.Socket()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := c.history(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := grantKey{User: "wo_user", Host: "localhost", Database: db, Table: "*"}
	if err := c.recordDeclared(t.Context(), reconciler.ID(gid), k, setOf([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}), false, hist.exists); err != nil {
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
