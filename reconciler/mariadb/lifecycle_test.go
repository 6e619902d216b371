package mariadb

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
)

// TestPrune_DestroyOnlyWhereAllowed: a database or user removed from the
// CUE is a pending destroy unless that resource allowed destroy; a grant
// removed from the CUE revokes what the CUE had declared (safe).
func TestPrune_DestroyOnlyWhereAllowed(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "prune_db", "pr_user@localhost")
	h.secrets["mariadb/pr_user"] = "pw"
	cat := onlineStore(h, "prune_db", "pr_user")
	allOutcome(t, h.run(cat...), reconciler.Created)

	// The grant leaves the catalog: its declared privileges are revoked.
	rep := h.run(cat[0], cat[1], cat[3])
	wantOutcomes(t, rep, map[string]reconciler.Outcome{"mariadb.grant:pr_user@localhost/prune_db.*": reconciler.Deleted})
	if hasPriv(t, root, "pr_user", "prune_db", "SELECT") {
		t.Fatal("grant not revoked")
	}

	// Database and user leave the catalog without allowDestroy: held.
	quietly(t, root, func() { rep = h.run() })
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"mariadb.database:prune_db":      reconciler.PendingDestroy,
		"mariadb.user:pr_user@localhost": reconciler.PendingDestroy,
		"mariadb.migration:prune_db":     reconciler.Unchanged, // the schema stays: nothing to undo
	})
	if !tableExists(t, h, "prune_db", "latest_features") {
		t.Fatal("data lost without allowDestroy")
	}

	// Back in the catalog with allowDestroy, then removed: dropped.
	allOutcome(t, h.run(h.res("mariadb.database:prune_db", map[string]any{"name": "prune_db"}, allowDestroy),
		h.res("mariadb.user:pr_user@localhost", map[string]any{"user": "pr_user", "password": map[string]any{"secret": "mariadb/pr_user"}}, allowDestroy)), reconciler.Unchanged)
	rep = h.run()
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"mariadb.database:prune_db":      reconciler.Deleted,
		"mariadb.user:pr_user@localhost": reconciler.Deleted,
	})
	if tableExists(t, h, "prune_db", "latest_features") {
		t.Fatal("database not dropped")
	}
}

func TestEnsureAbsent(t *testing.T) {
	h := newHarness(t, srv)
	root := srv.RootDB(t)
	clean(t, root, "gone_db", "gone@localhost")
	mustExec(t, root, "CREATE DATABASE gone_db")
	mustExec(t, root, "CREATE USER gone@localhost")
	cat := []reconciler.Resource{
		h.res("mariadb.database:gone_db", map[string]any{"name": "gone_db", "ensure": "absent"}),
		h.res("mariadb.user:gone@localhost", map[string]any{"user": "gone", "ensure": "absent"}),
	}
	allOutcome(t, h.run(cat...), reconciler.PendingDestroy)
	for i := range cat {
		cat[i].AllowDestroy = true
	}
	allOutcome(t, h.run(cat...), reconciler.Deleted)
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
}

// stopKind stops the test server in its apply, once: the server goes down
// in the middle of a run.
type stopKind struct {
	srv  *mariadbtest.Server
	done atomic.Bool
}

func (*stopKind) Kind() string                        { return "test.stop" }
func (*stopKind) Validate(*reconciler.Resource) error { return nil }
func (k *stopKind) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	if k.done.Load() {
		return &reconciler.Plan{}, nil
	}
	return &reconciler.Plan{Action: reconciler.ActionUpdate, Changes: []reconciler.Change{{Field: "server", After: "stopped"}},
		Apply: func(context.Context) error {
			k.done.Store(true)
			return k.srv.Stop()
		}}, nil
}

// otherKind stands for a resource that needs no MariaDB.
type otherKind struct{}

func (otherKind) Kind() string                        { return "test.other" }
func (otherKind) Validate(*reconciler.Resource) error { return nil }
func (otherKind) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	return &reconciler.Plan{}, nil
}

func TestServerDownMidRun(t *testing.T) {
	own := mariadbtest.Start(t)
	stop := &stopKind{srv: own}
	h := newHarness(t, own, stop, otherKind{})
	h.secrets["mariadb/down"] = "pw"
	cat := []reconciler.Resource{
		h.res("mariadb.database:down_db", map[string]any{"name": "down_db"}),
		{ID: "test.stop:now", Require: []reconciler.ID{"mariadb.database:down_db"}, Spec: []byte("{}")},
		h.res("mariadb.user:down@localhost", map[string]any{"user": "down", "password": map[string]any{"secret": "mariadb/down"}}, requires("test.stop:now")),
		h.res("mariadb.grant:down@localhost/down_db.*", map[string]any{"user": "down", "database": "down_db", "privileges": []string{"SELECT"}}, requires("mariadb.user:down@localhost")),
		{ID: "test.other:independent", Spec: []byte("{}")},
	}
	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"mariadb.database:down_db":               reconciler.Created,
		"test.stop:now":                          reconciler.Changed,
		"mariadb.user:down@localhost":            reconciler.Failed,
		"mariadb.grant:down@localhost/down_db.*": reconciler.Skipped,
		"test.other:independent":                 reconciler.Unchanged,
	})
	for _, r := range rep.Results {
		if r.ID == "mariadb.user:down@localhost" && !strings.Contains(r.Error, "unavailable (will retry next run)") {
			t.Errorf("user error: %s", r.Error)
		}
	}
	if rep.ExitCode() != 6 {
		t.Errorf("exit code %d, want 6", rep.ExitCode())
	}

	// The error is typed, for the agent's retry.
	k := reconciler.NewTyped(&UserKind{h.kinds})
	_, err := k.Plan(t.Context(), &reconciler.Env{Secrets: h.secrets, Cache: reconciler.NewCache()}, &cat[2])
	var ue *UnavailableError
	if !errors.As(err, &ue) || !ue.Retryable() {
		t.Fatalf("plan on a stopped server: %v, want *UnavailableError", err)
	}

	// The server is back: the next run (same pools) converges.
	if err := own.Restart(); err != nil {
		t.Fatal(err)
	}
	rep = h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"mariadb.database:down_db":               reconciler.Unchanged,
		"mariadb.user:down@localhost":            reconciler.Created,
		"mariadb.grant:down@localhost/down_db.*": reconciler.Created,
	})
	quietly(t, own.RootDB(t), func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
}

// TestBadIdentifier_NoSQLSent: names that the schema would refuse are
// refused by the kinds too, before any connection is made.
func TestBadIdentifier_NoSQLSent(t *testing.T) {
	root := srv.RootDB(t)
	h := newHarness(t, srv)
	bad := []reconciler.Resource{
		h.res("mariadb.database:x`; DROP DATABASE mysql; --", map[string]any{"name": "x`; DROP DATABASE mysql; --"}),
		h.res("mariadb.database:1abc", map[string]any{"name": "1abc"}),
		h.res("mariadb.user:a'b@localhost", map[string]any{"user": "a'b", "password": map[string]any{"secret": "x"}}),
		h.res("mariadb.user:ok@local host", map[string]any{"user": "ok", "host": "local host", "password": map[string]any{"secret": "x"}}),
		h.res("mariadb.grant:ok@localhost/db.t`x", map[string]any{"user": "ok", "database": "db", "table": "t`x", "privileges": []string{"SELECT"}}),
		h.res("mariadb.grant:ok@localhost/db.*", map[string]any{"user": "ok", "database": "db", "privileges": []string{"SELECT; DROP TABLE x"}}),
		h.res("mariadb.grant:ok@localhost/db.t", map[string]any{"user": "ok", "database": "db", "table": "t", "privileges": []string{"FILE"}}),
		h.res("mariadb.migration:bad db", map[string]any{"database": "bad db", "migrations": []map[string]any{{"version": 1, "name": "x", "sql": "SELECT 1"}}}),
		h.res("mariadb.database:okdb", map[string]any{"name": "okdb", "charset": "utf8mb4; DROP"}),
	}
	base := mariadbtest.Status(t, root)
	idle := mariadbtest.Status(t, root)
	before := mariadbtest.Status(t, root)
	rep := h.run(bad...)
	after := mariadbtest.Status(t, root)
	allOutcome(t, rep, reconciler.Failed)
	for _, r := range rep.Results {
		if !strings.Contains(r.Error, "invalid spec") {
			t.Errorf("%s: %s", r.ID, r.Error)
		}
	}
	if d := mariadbtest.Delta(before, after, "Connections"); d != 0 {
		t.Errorf("%d connections made for invalid resources", d)
	}
	if d, d0 := mariadbtest.Delta(before, after, "Questions"), mariadbtest.Delta(base, idle, "Questions"); d != d0 {
		t.Errorf("%d statements reached the server, want %d (the status reads)", d, d0)
	}

	// Plan re-validates: a kind called directly never reaches SQL either.
	for _, r := range bad {
		k, _ := reconciler.NewRegistry(h.kinds.All()...).Lookup(r.Kind())
		if _, err := k.Plan(t.Context(), &reconciler.Env{Cache: reconciler.NewCache()}, &r); err == nil {
			t.Errorf("%s: plan accepted it", r.ID)
		}
	}
	if d := mariadbtest.Delta(after, mariadbtest.Status(t, root), "Connections"); d != 0 {
		t.Errorf("%d connections made by plans of invalid resources", d)
	}
}

// TestSQLModes: the kinds work, and stay quiet, when the server runs with
// ANSI (ANSI_QUOTES, PIPES_AS_CONCAT, ...) and NO_BACKSLASH_ESCAPES.
func TestSQLModes(t *testing.T) {
	root := srv.RootDB(t)
	clean(t, root, "ansi_db", "ansi_user@localhost")
	var old string
	if err := root.QueryRow("SELECT @@GLOBAL.sql_mode").Scan(&old); err != nil {
		t.Fatal(err)
	}
	mustExec(t, root, "SET GLOBAL sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES,NO_AUTO_CREATE_USER'")
	reset := root
	// old holds mode names only: no quote to escape.
	t.Cleanup(func() { mustExec(t, reset, "SET GLOBAL sql_mode = '"+old+"'") })
	// A new pool: new sessions take the global mode.
	root = srv.RootDB(t)
	var mode string
	if err := root.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || !strings.Contains(mode, "ANSI_QUOTES") {
		t.Fatalf("session sql_mode %q %v", mode, err)
	}

	h := newHarness(t, srv)
	h.secrets["mariadb/ansi_user"] = `pw with 'quotes' and \backslashes\ and "doubles"`
	cat := onlineStore(h, "ansi_db", "ansi_user")
	allOutcome(t, h.run(cat...), reconciler.Created)
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
	if err := connectAs(t, srv, "ansi_user", h.secrets["mariadb/ansi_user"], "ansi_db").Ping(); err != nil {
		t.Fatalf("login: %v", err)
	}
	mustExec(t, root, "DROP TABLE ansi_db.latest_features")
	mustExec(t, root, "REVOKE SELECT ON `ansi\\_db`.* FROM ansi_user@localhost")
	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"mariadb.migration:ansi_db":                   reconciler.Changed,
		"mariadb.grant:ansi_user@localhost/ansi_db.*": reconciler.Changed,
	})
}

// TestAdminFromSecret_TCP: fsgit connects over TCP as an admin account
// whose password is a secret, instead of root over the socket.
func TestAdminFromSecret_TCP(t *testing.T) {
	own := mariadbtest.StartWith(t, mariadbtest.Options{TCP: true})
	root := own.RootDB(t)
	mustExec(t, root, "CREATE USER fsgit_admin@'%' IDENTIFIED BY 'admin-pw'")
	mustExec(t, root, "GRANT ALL PRIVILEGES ON *.* TO fsgit_admin@'%' WITH GRANT OPTION")
	h := newHarness(t, own)
	h.secrets["mariadb/admin"] = "admin-pw"
	h.secrets["mariadb/app"] = "app-pw"
	host, port, _ := strings.Cut(own.Addr(), ":")
	server := map[string]any{"host": host, "port": json.Number(port), "adminUser": "fsgit_admin", "adminPassword": map[string]any{"secret": "mariadb/admin"}}
	cat := []reconciler.Resource{
		h.res("mariadb.database:tcp_db", map[string]any{"name": "tcp_db", "server": server}),
		h.res("mariadb.user:app@%", map[string]any{"user": "app", "host": "%", "password": map[string]any{"secret": "mariadb/app"}, "server": server}),
		h.res("mariadb.grant:app@%/tcp_db.*", map[string]any{"user": "app", "host": "%", "database": "tcp_db", "privileges": []string{"SELECT"}, "server": server},
			requires("mariadb.user:app@%", "mariadb.database:tcp_db")),
	}
	allOutcome(t, h.run(cat...), reconciler.Created)
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'fsgit_admin'").Scan(&n); err != nil || n == 0 {
		t.Fatalf("no connection as fsgit_admin (%d, %v)", n, err)
	}

	// A wrong admin password fails the resources, as a SQL error (1045),
	// not as an unavailable server; it never shows the password.
	h2 := newHarness(t, own)
	h2.secrets["mariadb/admin"] = "wrong-pw"
	h2.secrets["mariadb/app"] = "app-pw"
	rep := h2.run(cat...)
	for _, r := range rep.Results {
		if r.Outcome != reconciler.Failed && r.Outcome != reconciler.Skipped {
			t.Errorf("%s: %s with a wrong admin password", r.ID, r.Outcome)
		}
		if strings.Contains(r.Error, "wrong-pw") || strings.Contains(r.Error, "unavailable") {
			t.Errorf("%s: error %q", r.ID, r.Error)
		}
	}
}
