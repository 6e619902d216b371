package mariadb

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
)

// TestExampleSite_OnlineStore loads the example site's online node (the
// mariadb_server and iceberg_catalog_db profiles), retargets its MariaDB
// endpoint at the test server with one node-level CUE file (as site.cue
// says a demo does), and converges its mariadb.* resources on the real
// server. Packages, server.cnf and the service are other kinds' tests.
func TestExampleSite_OnlineStore(t *testing.T) {
	cat, secretNames := exampleOnline(t, srv.Socket(), "", "mariadb.")
	for _, want := range []string{"mariadb.database:feature_store_online", "mariadb.user:fs_user@localhost",
		"mariadb.grant:fs_user@localhost/feature_store_online.*", "mariadb.migration:feature_store_online"} {
		if (&reconciler.Catalog{Resources: cat}).Lookup(reconciler.ID(want)) == nil {
			t.Fatalf("%s not in the example's catalog", want)
		}
	}

	h := newHarness(t, srv)
	for name := range secretNames {
		h.secrets[name] = "example-" + strings.ReplaceAll(name, "/", "-")
	}
	root := srv.RootDB(t)
	clean(t, root, "feature_store_online", "fs_user@localhost", "iceberg_catalog_db", "iceberg_catalog_user@%")
	rep := h.run(cat...)
	for _, r := range rep.Results {
		// The profile's mariadb.security finds a secured server (as
		// Debian's package leaves it) and changes nothing.
		want := reconciler.Created
		if r.ID == "mariadb.security:mariadb" {
			want = reconciler.Unchanged
		}
		if r.Outcome != want {
			t.Fatalf("%s: %s, want %s\n%s", r.ID, r.Outcome, want, outcomes(rep))
		}
	}
	quietly(t, root, func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })

	// latest_features exists as the seed defines it.
	var ddl, name string
	if err := root.QueryRow("SHOW CREATE TABLE feature_store_online.latest_features").Scan(&name, &ddl); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{
		"`entity_id` varchar(255) NOT NULL", "`feature_name` varchar(255) NOT NULL", "`feature_value` blob DEFAULT NULL",
		"`updated_at` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()",
		"PRIMARY KEY (`entity_id`,`feature_name`)", "ENGINE=InnoDB", "CHARSET=utf8mb4",
	} {
		if !strings.Contains(ddl, part) {
			t.Errorf("latest_features lacks %q:\n%s", part, ddl)
		}
	}

	// fs_user: SELECT, INSERT, UPDATE, DELETE on feature_store_online and
	// nothing else, at any level.
	rows, err := root.Query(infoSchemaPrivilegesQuery)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for rows.Next() {
		var grantee, db, table, priv, grantable string
		if err := rows.Scan(&grantee, &db, &table, &priv, &grantable); err != nil {
			t.Fatal(err)
		}
		if grantee == "'fs_user'@'localhost'" {
			held = append(held, db+"."+table+":"+priv+":"+grantable)
		}
	}
	rows.Close()
	want := `*.*:USAGE:NO feature\_store\_online.*:SELECT:NO feature\_store\_online.*:INSERT:NO feature\_store\_online.*:UPDATE:NO feature\_store\_online.*:DELETE:NO`
	if got := strings.Join(held, " "); got != want {
		t.Errorf("fs_user holds %s\nwant %s", got, want)
	}
	fs := connectAs(t, srv, "fs_user", h.secrets["mariadb/fs_user"], "feature_store_online")
	mustExec(t, fs, "INSERT INTO latest_features (entity_id, feature_name, feature_value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE feature_value = VALUES(feature_value)", "user_123", "avg_purchase_value_7d", []byte("99.5"))
}

// exampleOnline returns the resources of the example site's online node
// whose kind starts with one of prefixes, with their edges among
// themselves, its MariaDB endpoint retargeted at socket by a node-level CUE
// file (plus extra CUE for that node's mariadb data), and the secret names
// they use.
func exampleOnline(t *testing.T, socket, extra string, prefixes ...string) ([]reconciler.Resource, map[string]bool) {
	t.Helper()
	site := filepath.Join(t.TempDir(), "example")
	if err := os.CopyFS(site, os.DirFS("../../sites/example")); err != nil {
		t.Fatal(err)
	}
	override := "package example\n\nnodes: \"online-1\": data: mariadb: {\n\tsocket: \"" + socket + "\"\n" + extra + "}\n"
	if err := os.WriteFile(filepath.Join(site, "zz_test_endpoint.cue"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := desired.LoadDir(t.Context(), site)
	if err != nil {
		t.Fatal(err)
	}
	full, err := s.Catalog("online-1")
	if err != nil {
		t.Fatal(err)
	}
	keep := func(id reconciler.ID) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(string(id), p) {
				return true
			}
		}
		return false
	}
	var cat []reconciler.Resource
	secretNames := map[string]bool{}
	for _, r := range full.Resources {
		if !keep(r.ID) {
			continue
		}
		var req, notify []reconciler.ID
		for _, d := range r.Require {
			if keep(d) {
				req = append(req, d)
			}
		}
		for _, d := range r.Notify {
			if keep(d) {
				notify = append(notify, d)
			}
		}
		r.Require, r.Notify = req, notify
		if strings.HasPrefix(r.Kind(), "mariadb.") {
			var spec struct {
				Server   Server                `json:"server"`
				Password *reconciler.SecretRef `json:"password"`
			}
			if err := json.Unmarshal(r.Spec, &spec); err != nil {
				t.Fatal(err)
			}
			if spec.Server.Socket != socket {
				t.Fatalf("%s: server %+v not retargeted", r.ID, spec.Server)
			}
			if spec.Password != nil {
				secretNames[spec.Password.Secret] = true
			}
		}
		cat = append(cat, r)
	}
	return cat, secretNames
}

// serviceStandIn takes the place of the service kind for service:mariadb
// where systemd does not run (as in CI): the service is the throwaway
// mariadbd, and a refresh restarts it, as systemctl restart mariadb would.
type serviceStandIn struct {
	srv      *mariadbtest.Server
	restarts atomic.Int32
}

func (*serviceStandIn) Kind() string                        { return "service" }
func (*serviceStandIn) Validate(*reconciler.Resource) error { return nil }
func (*serviceStandIn) Plan(context.Context, *reconciler.Env, *reconciler.Resource) (*reconciler.Plan, error) {
	return &reconciler.Plan{}, nil
}
func (s *serviceStandIn) Refresh(context.Context, *reconciler.Env, *reconciler.Resource, bool) error {
	s.restarts.Add(1)
	return s.srv.Restart()
}

// TestExampleSite_ConfigChangeRestartsOnce: the profile's server.cnf (the
// real file kind, under a root) is read by the server; a change to it
// restarts the server once, the MariaDB resources converge after the
// restart, and a quiet run restarts nothing.
func TestExampleSite_ConfigChangeRestartsOnce(t *testing.T) {
	root := t.TempDir()
	cnf := filepath.Join(root, "etc/mysql/mariadb.conf.d/90-fsgit-server.cnf")
	if err := os.MkdirAll(filepath.Dir(cnf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cnf, []byte("[mysqld]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	own := mariadbtest.StartWith(t, mariadbtest.Options{DefaultsFile: cnf})
	svc := &serviceStandIn{srv: own}
	h := newHarness(t, own, svc, file.NewFile())
	h.root = root
	cat, names := exampleOnline(t, own.Socket(), "", "mariadb.", "file:/etc/mysql/", "service:mariadb")
	for n := range names {
		h.secrets[n] = "pw-" + n
	}
	variable := func(name string) string {
		var k, v string
		if err := own.RootDB(t).QueryRow("SHOW GLOBAL VARIABLES LIKE '"+name+"'").Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := variable("max_connections"); v == "500" {
		t.Fatal("max_connections already 500 before the config exists")
	}

	rep := h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf": reconciler.Changed,
		"mariadb.database:feature_store_online":              reconciler.Created,
		"mariadb.migration:feature_store_online":             reconciler.Created,
	})
	if n := svc.restarts.Load(); n != 1 {
		t.Fatalf("%d restarts, want 1", n)
	}
	if v := variable("max_connections"); v != "500" {
		t.Fatalf("max_connections %s after the restart, want the role's 500", v)
	}

	quietly(t, own.RootDB(t), func() { allOutcome(t, h.run(cat...), reconciler.Unchanged) })
	if n := svc.restarts.Load(); n != 1 {
		t.Fatalf("a quiet run restarted the server (%d restarts)", n)
	}

	// A change in CUE (slow query threshold on this node) restarts once.
	cat, _ = exampleOnline(t, own.Socket(), "\tlongQueryTime: 2\n", "mariadb.", "file:/etc/mysql/", "service:mariadb")
	rep = h.run(cat...)
	wantOutcomes(t, rep, map[string]reconciler.Outcome{
		"file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf": reconciler.Changed,
		"mariadb.user:fs_user@localhost":                     reconciler.Unchanged,
	})
	if n := svc.restarts.Load(); n != 2 {
		t.Fatalf("%d restarts, want 2", n)
	}
	if v := variable("long_query_time"); v != "2.000000" {
		t.Fatalf("long_query_time %s", v)
	}
}
