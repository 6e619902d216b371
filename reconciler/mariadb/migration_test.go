package mariadb

import (
	"errors"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

func migrations(h *harness, db string, ms ...map[string]any) reconciler.Resource {
	return h.res("mariadb.migration:"+db, map[string]any{"database": db, "migrations": ms}, requires("mariadb.database:"+db))
}

func mig(v int, name, sql string) map[string]any {
	return map[string]any{"version": v, "name": name, "sql": sql}
}

func tableExists(t testing.TB, h *harness, db, table string) bool {
	t.Helper()
	var n int
	if err := h.server.RootDB(t).QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMigration_ApplyInOrderThenQuiet(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "mig_a")
	db := h.res("mariadb.database:mig_a", map[string]any{"name": "mig_a"})
	m1 := mig(1, "features", seedSQL)
	m2 := mig(2, "entities", "CREATE TABLE entities (id BIGINT PRIMARY KEY, name VARCHAR(64));\nINSERT INTO entities VALUES (1, 'a'), (2, 'b');\n-- a comment; with a semicolon\nCREATE INDEX entities_name ON entities (name);")
	allOutcome(t, h.run(db, migrations(h, "mig_a", m1)), reconciler.Created)
	quietly(t, root, func() { allOutcome(t, h.run(db, migrations(h, "mig_a", m1)), reconciler.Unchanged) })

	rep := h.run(db, migrations(h, "mig_a", m1, m2))
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.migration:mig_a": reconciler.Changed})
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM mig_a.entities").Scan(&n); err != nil || n != 2 {
		t.Fatalf("entities rows %d %v", n, err)
	}
	quietly(t, root, func() { allOutcome(t, h.run(db, migrations(h, "mig_a", m1, m2)), reconciler.Unchanged) })

	var rows int
	if err := root.QueryRow("SELECT COUNT(*) FROM mig_a.fsgit_schema_migrations WHERE checksum = SHA2(?, 256)", seedSQL).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("bookkeeping of migration 1: %d %v", rows, err)
	}
}

// TestMigration_TableDroppedByHand: the seed's sentinel file lies once a
// table is dropped; fsgit reads the database and re-creates it.
func TestMigration_TableDroppedByHand(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "mig_b")
	db := h.res("mariadb.database:mig_b", map[string]any{"name": "mig_b"})
	m := migrations(h, "mig_b",
		mig(1, "features", seedSQL),
		mig(2, "widen", "ALTER TABLE latest_features ADD COLUMN ttl INT NULL"),
		mig(3, "other", "CREATE TABLE other (a INT)"))
	allOutcome(t, h.run(db, m), reconciler.Created)

	mustExec(t, root, "DROP TABLE mig_b.latest_features")
	rep := h.run(db, m)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.migration:mig_b": reconciler.Changed})
	if !tableExists(t, h, "mig_b", "latest_features") {
		t.Fatal("latest_features not re-created")
	}
	// Re-created with the column a later migration added: both ran again.
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mig_b' AND TABLE_NAME = 'latest_features' AND COLUMN_NAME = 'ttl'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("ttl column: %d %v", n, err)
	}
	quietly(t, root, func() { allOutcome(t, h.run(db, m), reconciler.Unchanged) })

	// The whole database dropped by hand: database and every migration
	// come back.
	mustExec(t, root, "DROP DATABASE mig_b")
	wantOutcomes(t, h.run(db, m), map[string]reconciler.Outcome{"mariadb.database:mig_b": reconciler.Created, "mariadb.migration:mig_b": reconciler.Created})
	for _, tb := range []string{"latest_features", "other"} {
		if !tableExists(t, h, "mig_b", tb) {
			t.Fatalf("%s not re-created", tb)
		}
	}
	quietly(t, root, func() { allOutcome(t, h.run(db, m), reconciler.Unchanged) })
}

// TestMigration_PartlyUndone: a migration whose tables are only partly gone
// cannot run again on that state; fsgit says so instead of guessing.
func TestMigration_PartlyUndone(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "mig_c")
	db := h.res("mariadb.database:mig_c", map[string]any{"name": "mig_c"})
	m := migrations(h, "mig_c", mig(1, "two tables", "CREATE TABLE a (x INT); CREATE TABLE b (y INT);"))
	allOutcome(t, h.run(db, m), reconciler.Created)
	mustExec(t, root, "DROP TABLE mig_c.a")
	rep := h.run(db, m)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.migration:mig_c": reconciler.Failed})
	if e := rep.Results[len(rep.Results)-1].Error; !strings.Contains(e, "table a is missing") || !strings.Contains(e, "table b, which still exists") {
		t.Fatalf("error: %s", e)
	}
}

func TestMigration_ChecksumMismatch(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "mig_d")
	db := h.res("mariadb.database:mig_d", map[string]any{"name": "mig_d"})
	allOutcome(t, h.run(db, migrations(h, "mig_d", mig(1, "t", "CREATE TABLE t (a INT)"))), reconciler.Created)

	var rep *reconciler.Report
	changed := migrations(h, "mig_d", mig(1, "t", "CREATE TABLE t (a BIGINT)"))
	quietly(t, root, func() { rep = h.run(db, changed) })
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.migration:mig_d": reconciler.Failed})
	if e := rep.Results[len(rep.Results)-1].Error; !strings.Contains(e, "migration 1 (t) of database mig_d already ran with checksum") {
		t.Fatalf("error: %s", e)
	}

	// The error is typed for callers.
	k := reconciler.NewTyped(&MigrationKind{New()})
	t.Cleanup(func() { _ = k.Close() })
	_, err := k.Plan(t.Context(), &reconciler.Env{}, &changed)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Version != 1 {
		t.Fatalf("plan error %v, want a *ChecksumError", err)
	}

	// A version that vanished from the list, or a new one below the
	// highest applied, is an error as well.
	m1, m2, m3 := mig(1, "t", "CREATE TABLE t (a INT)"), mig(2, "late", "CREATE TABLE late (a INT)"), mig(3, "u", "CREATE TABLE u (a INT)")
	wantOutcomes(t, h.run(db, migrations(h, "mig_d", m1, m3)), map[string]reconciler.Outcome{"mariadb.migration:mig_d": reconciler.Changed})
	for _, tc := range []struct {
		name string
		ms   []map[string]any
		want string
	}{
		{"removed", []map[string]any{m3}, "migration 1 (t) is recorded as applied but no longer declared"},
		{"out of order", []map[string]any{m1, m2, m3}, "migration 2 (late) is new but lower than the highest applied version 3"},
	} {
		quietly(t, root, func() { rep = h.run(db, migrations(h, "mig_d", tc.ms...)) })
		if e := rep.Results[len(rep.Results)-1].Error; !strings.Contains(e, tc.want) {
			t.Errorf("%s: error %q, want %q", tc.name, e, tc.want)
		}
	}
}

func TestMigration_FailingScriptIsNotRecorded(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "mig_e")
	db := h.res("mariadb.database:mig_e", map[string]any{"name": "mig_e"})
	bad := migrations(h, "mig_e", mig(1, "broken", "CREATE TABLE ok1 (a INT); CREATE TABLE broken (a NOSUCHTYPE);"))
	rep := h.run(db, bad)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.migration:mig_e": reconciler.Failed})
	if e := rep.Results[len(rep.Results)-1].Error; !strings.Contains(e, "run migration 1 (broken)") || !strings.Contains(e, "NOSUCHTYPE") {
		t.Fatalf("error: %s", e)
	}
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM mig_e.fsgit_schema_migrations").Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed migration recorded: %d %v", n, err)
	}
}
