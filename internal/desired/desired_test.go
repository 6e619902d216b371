package desired

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/sitefiles"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/schema"
)

const repoRoot = "../.."

// exampleFS returns the repository's sites/ tree in memory, with extra
// files added (path -> content), so that a test can layer a file onto the
// example site the way a demo or a site owner would.
func exampleFS(tb testing.TB, extra map[string]string) fs.FS {
	tb.Helper()
	files := map[string][]byte{}
	root := os.DirFS(repoRoot)
	err := fs.WalkDir(root, "sites", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(name, ".cue") {
			b, err := fs.ReadFile(root, name)
			if err != nil {
				return err
			}
			files[name] = b
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for name, content := range extra {
		files[name] = []byte(content)
	}
	return sitefiles.NewMemFS(files)
}

func loadExample(tb testing.TB, extra map[string]string) *Site {
	tb.Helper()
	s, err := Load(context.Background(), Source{FS: exampleFS(tb, extra), SiteDir: "sites/example"})
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	return s
}

func catalog(tb testing.TB, s *Site, node string) *reconciler.Catalog {
	tb.Helper()
	c, err := s.Catalog(node)
	if err != nil {
		tb.Fatalf("catalog %s: %v", node, err)
	}
	return c
}

func spec(tb testing.TB, c *reconciler.Catalog, id reconciler.ID) map[string]any {
	tb.Helper()
	r := c.Lookup(id)
	if r == nil {
		tb.Fatalf("node %s has no %s", c.Node, id)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Spec, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestLoadDir_Example(t *testing.T) {
	s, err := LoadDir(context.Background(), filepath.Join(repoRoot, "sites/example"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "example" {
		t.Errorf("name %q", s.Name())
	}
	if got := strings.Join(s.Nodes(), " "); got != "monitoring-1 offline-1 online-1 vector-1" {
		t.Errorf("nodes %q", got)
	}
	if !strings.HasPrefix(s.Revision(), "sha256:") || len(s.Revision()) != len("sha256:")+64 {
		t.Errorf("revision %q", s.Revision())
	}
	roles := map[string]string{"online-1": "feature_store_online", "offline-1": "feature_store_offline", "vector-1": "feature_store_vector", "monitoring-1": "feature_store_monitoring"}
	for node, role := range roles {
		c := catalog(t, s, node)
		if c.Role != role || c.Site != "example" || c.Revision != s.Revision() {
			t.Errorf("%s: catalog header %+v", node, c)
		}
		if !sort.SliceIsSorted(c.Resources, func(i, j int) bool { return c.Resources[i].ID < c.Resources[j].ID }) {
			t.Errorf("%s: resources not sorted", node)
		}
		if _, errs := reconciler.BuildGraph(c); len(errs) > 0 {
			t.Errorf("%s: %v", node, errs)
		}
		// Every node has base.
		for _, id := range []reconciler.ID{"service:chrony", "file:/etc/ssh/sshd_config.d/10-fsgit-hardening.conf", "exec:sysctl-apply", "user:fsops"} {
			if c.Lookup(id) == nil {
				t.Errorf("%s: no %s", node, id)
			}
		}
	}

	online := catalog(t, s, "online-1")
	mig := spec(t, online, "mariadb.migration:feature_store_online")
	steps := mig["migrations"].([]any)
	if len(steps) != 1 || !strings.Contains(steps[0].(map[string]any)["sql"].(string), "PRIMARY KEY (`entity_id`, `feature_name`)") {
		t.Errorf("migration %v", mig)
	}
	user := spec(t, online, "mariadb.user:fs_user@localhost")
	if pw := user["password"].(map[string]any); pw["secret"] != "mariadb/fs_user" || len(pw) != 1 {
		t.Errorf("password must be a reference only: %v", pw)
	}
	grant := spec(t, online, "mariadb.grant:fs_user@localhost/feature_store_online.*")
	if p, _ := json.Marshal(grant["privileges"]); string(p) != `["SELECT","INSERT","UPDATE","DELETE"]` {
		t.Errorf("privileges %s", p)
	}
	if r := online.Lookup("file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf"); r == nil || len(r.Notify) != 1 || r.Notify[0] != "service:mariadb" {
		t.Errorf("server.cnf must notify service:mariadb: %+v", r)
	}

	offline := catalog(t, s, "offline-1")
	conf := spec(t, offline, "file:/opt/spark/conf/spark-defaults.conf")
	content := conf["content"].(string)
	for _, want := range []string{
		"spark.sql.catalog.prod_catalog.uri jdbc:mariadb://feature-store-online-node.internal:3306/iceberg_catalog_db\n",
		"spark.sql.catalog.prod_catalog.jdbc.password {{secret:catalog_password}}\n",
		"spark.sql.catalog.prod_catalog.io-impl org.apache.iceberg.aws.s3.S3FileIO\n",
	} {
		if !strings.Contains(content, want) {
			t.Errorf("spark-defaults.conf lacks %q", want)
		}
	}
	if conf["mode"] != "0640" {
		t.Errorf("spark-defaults.conf mode %v", conf["mode"])
	}
	jar := spec(t, offline, "artifact:/opt/spark/jars/iceberg-spark-runtime-3.4_2.12-1.4.2.jar")
	if jar["url"] != "https://repo1.maven.org/maven2/org/apache/iceberg/iceberg-spark-runtime-3.4_2.12/1.4.2/iceberg-spark-runtime-3.4_2.12-1.4.2.jar" {
		t.Errorf("jar url %v", jar["url"])
	}

	vector := catalog(t, s, "vector-1")
	wv := spec(t, vector, "docker.container:weaviate")
	env := wv["env"].(map[string]any)
	if env["CLUSTER_HOSTNAME"] != "feature-store-vector-node.internal" || env["TRANSFORMERS_INFERENCE_API"] != "http://t2v-transformers:8080" {
		t.Errorf("weaviate env %v", env)
	}
	if wv["image"] != "semitechnologies/weaviate:1.23.7" {
		t.Errorf("weaviate image %v", wv["image"])
	}
}

func TestVet_ExampleWarnsOnlyAboutJarDigests(t *testing.T) {
	s := loadExample(t, nil)
	probs := s.Vet(context.Background())
	if HasErrors(probs) {
		t.Fatalf("example has errors: %v", probs)
	}
	if len(probs) != 3 {
		t.Fatalf("want 3 warnings (one per jar), got %v", probs)
	}
	for _, p := range probs {
		if !p.Warning || p.Node != "offline-1" || p.Resource.Kind() != "artifact" || !strings.Contains(p.Msg, "all-zero placeholder") {
			t.Errorf("unexpected %v", p)
		}
	}
}

// TestCatalog_NodeLevelEndpoints checks the layering rule the demo relies
// on: endpoints and data directories are left at their profile defaults by
// sites/example, so one more file can set them per node.
func TestCatalog_NodeLevelEndpoints(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	s := loadExample(t, map[string]string{"sites/example/zz_local.cue": `package example

nodes: "online-1": data: mariadb: {socket: "/tmp/x.sock", port: 3307, datadir: "/tmp/mysql"}
nodes: "offline-1": data: {
	spark: mirror: "file:///srv/mirror"
	spark: jars: iceberg: sha256: "` + digest + `"
	iceberg: warehouse: "file:///tmp/warehouse"
	iceberg: db: {host: "127.0.0.1", port: 3307, socket: "/tmp/x.sock"}
}
nodes: "vector-1": data: weaviate: {port: 18080, dataDir: "/tmp/weaviate", image: "fsgit/weaviate:dev", pull: "never"}
`})
	online := catalog(t, s, "online-1")
	cnf := spec(t, online, "file:/etc/mysql/mariadb.conf.d/90-fsgit-server.cnf")["content"].(string)
	for _, want := range []string{"socket = /tmp/x.sock\n", "port = 3307\n", "datadir = /tmp/mysql\n"} {
		if !strings.Contains(cnf, want) {
			t.Errorf("server.cnf lacks %q:\n%s", want, cnf)
		}
	}
	for _, id := range []reconciler.ID{"mariadb.database:feature_store_online", "mariadb.user:fs_user@localhost", "mariadb.migration:feature_store_online", "mariadb.user:iceberg_catalog_user@%"} {
		server := spec(t, online, id)["server"].(map[string]any)
		if server["socket"] != "/tmp/x.sock" || server["port"] != float64(3307) {
			t.Errorf("%s: server %v", id, server)
		}
	}

	offline := catalog(t, s, "offline-1")
	jar := spec(t, offline, "artifact:/opt/spark/jars/iceberg-spark-runtime-3.4_2.12-1.4.2.jar")
	if jar["url"] != "file:///srv/mirror/org/apache/iceberg/iceberg-spark-runtime-3.4_2.12/1.4.2/iceberg-spark-runtime-3.4_2.12-1.4.2.jar" || jar["sha256"] != digest {
		t.Errorf("jar %v", jar)
	}
	conf := spec(t, offline, "file:/opt/spark/conf/spark-defaults.conf")["content"].(string)
	if !strings.Contains(conf, "warehouse file:///tmp/warehouse\n") || strings.Contains(conf, "S3FileIO") || !strings.Contains(conf, "jdbc:mariadb://127.0.0.1:3307/") {
		t.Errorf("spark-defaults.conf:\n%s", conf)
	}
	table := spec(t, offline, "iceberg.table:feature_logs.historical_features")
	db := table["catalog"].(map[string]any)["db"].(map[string]any)
	if db["socket"] != "/tmp/x.sock" || db["host"] != nil || table["catalog"].(map[string]any)["warehouse"] != "file:///tmp/warehouse" {
		t.Errorf("iceberg catalog %v", table["catalog"])
	}

	vector := catalog(t, s, "vector-1")
	wv := spec(t, vector, "docker.container:weaviate")
	if wv["image"] != "fsgit/weaviate:dev" {
		t.Errorf("image %v", wv["image"])
	}
	if p := wv["ports"].([]any)[0].(map[string]any); p["host"] != float64(18080) || p["container"] != float64(8080) {
		t.Errorf("ports %v", p)
	}
	if m := wv["mounts"].([]any)[0].(map[string]any); m["source"] != "/tmp/weaviate" {
		t.Errorf("mounts %v", m)
	}
	if c := spec(t, vector, "weaviate.class:FeatureMetadata"); c["url"] != "http://127.0.0.1:18080" {
		t.Errorf("class url %v", c["url"])
	}
	if img := spec(t, vector, "docker.image:fsgit/weaviate:dev"); img["pull"] != "never" {
		t.Errorf("image %v", img)
	}
}

func TestLoad_SchemaVersionMismatch(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "sites/example/site.cue"))
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(src), `schemaVersion: "`+SchemaVersion()+`"`, `schemaVersion: "v0"`, 1)
	if old == string(src) {
		t.Fatal("site.cue does not declare the current schema version")
	}
	_, err = Load(context.Background(), Source{FS: exampleFS(t, map[string]string{"sites/example/site.cue": old}), SiteDir: "sites/example"})
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want *InvalidError, got %v", err)
	}
	msg := inv.Error()
	for _, want := range []string{`"v0"`, `"` + SchemaVersion() + `"`, "sites/example/site.cue:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestLoad_RevisionFollowsFiles(t *testing.T) {
	a := loadExample(t, nil)
	b := loadExample(t, map[string]string{"sites/example/zz.cue": "package example\n"})
	if a.Revision() == b.Revision() {
		t.Error("adding a file did not change the revision")
	}
	if c := loadExample(t, nil); c.Revision() != a.Revision() {
		t.Error("same files, different revision")
	}
}

// TestKindFields_AllKindsSample checks that testdata/allkinds (the
// examples of every kind in #Kinds) sets every field of every kind, so
// that the decode test in cmd/fsgit (which feeds that sample to the Go
// kinds) covers every field. That the kinds are the Go registry's is
// checked in cmd/fsgit.
func TestKindFields_AllKindsSample(t *testing.T) {
	fields, err := KindFields()
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) < 2 {
		t.Fatalf("%d kinds in #Kinds", len(fields))
	}
	s, err := LoadDir(context.Background(), "testdata/allkinds")
	if err != nil {
		t.Fatal(err)
	}
	c := catalog(t, s, "n")
	seen := map[string]map[string]bool{}
	for _, r := range c.Resources {
		var v any
		if err := json.Unmarshal(r.Spec, &v); err != nil {
			t.Fatal(err)
		}
		if seen[r.Kind()] == nil {
			seen[r.Kind()] = map[string]bool{}
		}
		flatten(v, "", seen[r.Kind()])
	}
	for kind, paths := range fields {
		for _, p := range paths {
			if !seen[kind][p] {
				t.Errorf("the examples of #Kinds (testdata/allkinds) do not set %s field %s", kind, p)
			}
		}
	}
}

func flatten(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			flatten(e, p, out)
		}
	case []any:
		for _, e := range x {
			if _, ok := e.(map[string]any); ok {
				flatten(e, prefix+"[]", out)
			}
		}
	}
}

// TestKindFields_Documented checks that docs/kinds.md names every field of
// every kind in the kind's section (nested fields anywhere).
func TestKindFields_Documented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs/kinds.md"))
	if err != nil {
		t.Fatal(err)
	}
	fields, err := KindFields()
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for kind, paths := range fields {
		start := strings.Index(text, "\n## "+kind+"\n")
		if start < 0 {
			start = strings.Index(text, "\n## "+kind+" ")
		}
		if start < 0 {
			t.Errorf("docs/kinds.md has no section for %s", kind)
			continue
		}
		section := text[start+1:]
		if end := strings.Index(section, "\n## "); end >= 0 {
			section = section[:end]
		}
		for _, p := range paths {
			leaf := path.Base(strings.ReplaceAll(strings.ReplaceAll(p, "[]", ""), ".", "/"))
			where := section
			if strings.Contains(p, ".") {
				where = text
			}
			full := "`" + strings.ReplaceAll(p, "[]", "") + "`"
			if !strings.Contains(where, "`"+leaf+"`") && !strings.Contains(where, full) && !strings.Contains(where, leaf+":") && !strings.Contains(where, leaf+"?:") {
				t.Errorf("docs/kinds.md does not document %s field %s", kind, p)
			}
		}
	}
}

// TestLoad_ProfilesFromTheTree checks that a repository with its own
// schema/profile/ is loaded with those profiles (a site owner adds one
// without Go), while schema/*.cue always comes from the binary.
func TestLoad_ProfilesFromTheTree(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		files["schema/"+name] = b
	}
	files["schema/profile/motd.cue"] = []byte(`package profile

#Data: motd: text: *"Managed by fsgit\n" | string

#Profiles: motd: #Motd

#Motd: #Profile & {
	data: _
	resources: "file:/etc/motd": content: "\(data.motd.text)"
}
`)
	// A schema file in the tree is ignored: the embedded schema wins.
	files["schema/kinds.cue"] = []byte("package schema\n\n#File: {}\n")
	files["sites/s/site.cue"] = []byte(`package s

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "s"
roles: r: profiles: ["motd"]
nodes: n: {role: "r", data: motd: text: "hello\n"}
`)
	s, err := Load(context.Background(), Source{FS: sitefiles.NewMemFS(files), SiteDir: "sites/s"})
	if err != nil {
		t.Fatal(err)
	}
	c := catalog(t, s, "n")
	f := spec(t, c, "file:/etc/motd")
	if f["content"] != "hello\n" || f["mode"] != "0644" || f["owner"] != "root" {
		t.Errorf("file:/etc/motd %v", f)
	}
}

// TestSchemaVersion: the embedded schema's #Version, vN; a version.cue
// without one is an error.
func TestSchemaVersion(t *testing.T) {
	if v := SchemaVersion(); !regexp.MustCompile(`^v[0-9]+$`).MatchString(v) {
		t.Errorf("SchemaVersion() = %q", v)
	}
	if _, err := versionOf([]byte("package schema\n\n#Other: \"v1\"\n")); err == nil {
		t.Error("a version.cue without #Version: no error")
	}
}
