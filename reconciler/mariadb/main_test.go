package mariadb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
)

// srv is the package's throwaway server; tests use names of their own on
// it and do not run in parallel, so that global status counters belong to
// one test at a time. Tests that stop a server start their own.
var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	var stop func()
	srv, stop = mariadbtest.StartMain()
	code := m.Run()
	stop()
	os.Exit(code)
}

// secrets is an in-test secret provider.
type secrets map[string]string

func (s secrets) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	v, ok := s[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("resolve %s: %w", ref, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}

// harness runs catalogs through the real engine with the MariaDB kinds,
// remembering between runs as a node does.
type harness struct {
	t       testing.TB
	kinds   *Kinds
	engine  *reconciler.Engine
	secrets secrets
	prior   *reconciler.Memory
	server  *mariadbtest.Server
	extra   []reconciler.Kind
	root    string // RunOptions.Root
}

func newHarness(t testing.TB, s *mariadbtest.Server, extra ...reconciler.Kind) *harness {
	t.Helper()
	h := &harness{t: t, kinds: New(), secrets: secrets{}, server: s, extra: extra}
	t.Cleanup(func() { _ = h.kinds.Close() })
	h.engine = reconciler.NewEngine(reconciler.Config{Registry: reconciler.NewRegistry(append(h.kinds.All(), extra...)...)})
	return h
}

// res builds a resource; spec gets the server's socket, and the defaults
// the schema gives (see schemaDefaults).
func (h *harness) res(id string, spec map[string]any, opts ...func(*reconciler.Resource)) reconciler.Resource {
	h.t.Helper()
	if _, ok := spec["server"]; !ok {
		spec["server"] = map[string]any{"socket": h.server.Socket()}
	}
	schemaDefaults(id, spec)
	b, err := json.Marshal(spec)
	if err != nil {
		h.t.Fatal(err)
	}
	r := reconciler.Resource{ID: reconciler.ID(id), Spec: b}
	for _, o := range opts {
		o(&r)
	}
	return r
}

// schemaDefaults fills in spec, a MariaDB kind's spec written as JSON,
// the defaults schema/kinds.cue gives a catalog's: the server's port and
// admin user, a user's host and plugin, a grant's host and table.
func schemaDefaults(id string, spec map[string]any) {
	fill := func(m map[string]any, kv ...any) {
		for i := 0; i < len(kv); i += 2 {
			if _, ok := m[kv[i].(string)]; !ok {
				m[kv[i].(string)] = kv[i+1]
			}
		}
	}
	if srv, ok := spec["server"].(map[string]any); ok {
		fill(srv, "port", 3306, "adminUser", "root")
		if _, tcp := srv["host"]; !tcp {
			fill(srv, "socket", "/run/mysqld/mysqld.sock")
		}
	}
	switch kind, _, _ := strings.Cut(id, ":"); kind {
	case "mariadb.user":
		fill(spec, "host", "localhost", "plugin", pluginNative)
	case "mariadb.grant":
		fill(spec, "host", "localhost", "table", "*")
	}
}

func requires(ids ...string) func(*reconciler.Resource) {
	return func(r *reconciler.Resource) {
		for _, id := range ids {
			r.Require = append(r.Require, reconciler.ID(id))
		}
	}
}

func detect(r *reconciler.Resource)       { r.Mode = reconciler.ModeDetect }
func allowDestroy(r *reconciler.Resource) { r.AllowDestroy = true }

// run applies the catalog once (noop false) and returns the report.
func (h *harness) run(rs ...reconciler.Resource) *reconciler.Report {
	h.t.Helper()
	return h.runOpts(false, rs...)
}

func (h *harness) runOpts(noop bool, rs ...reconciler.Resource) *reconciler.Report {
	h.t.Helper()
	cat := &reconciler.Catalog{Node: "test", Resources: append([]reconciler.Resource(nil), rs...)}
	cat.Sort()
	rep, err := h.engine.Apply(context.Background(), cat, reconciler.RunOptions{Noop: noop, Secrets: h.secrets, Prior: h.prior, Root: h.root})
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	if rep.Next != nil {
		h.prior = rep.Next
	}
	return rep
}

// outcomes renders a report as "id=outcome" lines, sorted as the report.
func outcomes(rep *reconciler.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "%s=%s", r.ID, r.Outcome)
		if r.Error != "" {
			fmt.Fprintf(&b, " (%s)", r.Error)
		}
		if r.Warning != "" {
			fmt.Fprintf(&b, " [warning: %s]", r.Warning)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// wantOutcomes fails unless every listed resource has the given outcome.
func wantOutcomes(t testing.TB, rep *reconciler.Report, want map[string]reconciler.Outcome) {
	t.Helper()
	got := map[reconciler.ID]reconciler.Result{}
	for _, r := range rep.Results {
		got[r.ID] = r
	}
	for id, o := range want {
		r, ok := got[reconciler.ID(id)]
		if !ok {
			t.Errorf("%s: not in the report:\n%s", id, outcomes(rep))
			continue
		}
		if r.Outcome != o {
			t.Errorf("%s: outcome %s, want %s\n%s", id, r.Outcome, o, outcomes(rep))
		}
	}
}

// allOutcome fails unless every result has outcome o.
func allOutcome(t testing.TB, rep *reconciler.Report, o reconciler.Outcome) {
	t.Helper()
	for _, r := range rep.Results {
		if r.Outcome != o {
			t.Fatalf("%s: outcome %s, want %s for all:\n%s", r.ID, r.Outcome, o, outcomes(rep))
		}
	}
}

// quietly runs f and fails if any statement that writes ran on the server
// meanwhile (global counters, so every connection counts).
func quietly(t testing.TB, db *sql.DB, f func()) {
	t.Helper()
	before := mariadbtest.Status(t, db)
	f()
	if w := mariadbtest.WriteCounters(before, mariadbtest.Status(t, db)); len(w) != 0 {
		t.Fatalf("statements that write ran: %v", w)
	}
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// connectAs opens a connection as user with password over the socket.
func connectAs(t testing.TB, s *mariadbtest.Server, user, pass, db string) *sql.DB {
	t.Helper()
	c, err := sql.Open("mysql", s.DSN(user, pass, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clean drops what a test is about to create, so that it starts from empty
// on a shared server (and under -count=N): "db" names a database,
// "user@host" an account.
func clean(t testing.TB, db *sql.DB, names ...string) {
	t.Helper()
	for _, n := range names {
		if u, h, ok := strings.Cut(n, "@"); ok {
			mustExec(t, db, "DROP USER IF EXISTS "+account(u, h))
			// The history table exists once some grant was applied.
			_, _ = db.Exec("DELETE FROM fsgit.declared_grants WHERE user = ? AND host = ?", u, h)
			continue
		}
		mustExec(t, db, "DROP DATABASE IF EXISTS "+quoteIdent(n))
	}
}
