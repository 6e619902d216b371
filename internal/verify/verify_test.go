package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/internal/verify"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/icebergtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	cleanHelper := icebergtest.Setenv()
	var stop func()
	srv, stop = mariadbtest.StartMain()
	code := m.Run()
	stop()
	cleanHelper()
	os.Exit(code)
}

// secrets is a resolver over a map, standing in for the node's secret
// files.
type secrets map[string]string

func (s secrets) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	v, ok := s[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("secret %s: %w", ref.Secret, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}

// The seed's online schema.
const latestFeaturesDDL = "CREATE TABLE `latest_features` (" +
	"`entity_id` VARCHAR(255) NOT NULL, `feature_name` VARCHAR(255) NOT NULL, `feature_value` BLOB, " +
	"`updated_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, " +
	"PRIMARY KEY (`entity_id`, `feature_name`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

// stack is the online and offline stores on the package's MariaDB, set up
// the way the example site converges them: the online database, its table
// and fs_user; the iceberg catalog database and user; the namespace and
// table applied by the iceberg kinds.
type stack struct {
	cfg     *verify.Config
	secrets secrets
}

var stackSeq int

func newStack(t *testing.T) *stack {
	t.Helper()
	stackSeq++
	n := stackSeq
	online, catDB := fmt.Sprintf("feature_store_online_%d", n), fmt.Sprintf("iceberg_catalog_%d", n)
	fsUser, catUser := fmt.Sprintf("fs_user_%d", n), fmt.Sprintf("iceberg_%d", n)
	root := srv.RootDB(t)
	for _, q := range []string{
		"CREATE DATABASE `" + online + "`",
		"CREATE TABLE `" + online + "`." + strings.TrimPrefix(latestFeaturesDDL, "CREATE TABLE "),
		"CREATE USER '" + fsUser + "'@'localhost' IDENTIFIED BY 'fs-pw'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON `" + online + "`.* TO '" + fsUser + "'@'localhost'",
		"CREATE DATABASE `" + catDB + "`",
		"CREATE USER '" + catUser + "'@'localhost' IDENTIFIED BY 'catalog-pw'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `" + catDB + "`.* TO '" + catUser + "'@'localhost'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sec := secrets{"mariadb/fs_user": "fs-pw", "iceberg/catalog": "catalog-pw"}
	cat := iceberg.CatalogSpec{
		Name:      "prod_catalog",
		Warehouse: "file://" + filepath.Join(t.TempDir(), "warehouse"),
		DB: iceberg.DBSpec{Socket: srv.Socket(), Port: 3306, Database: catDB, User: catUser,
			Password: reconciler.SecretRef{Secret: "iceberg/catalog"}},
	}
	tbl := iceberg.TableSpec{
		Catalog:   cat,
		Namespace: []string{"feature_logs"},
		Name:      "historical_features",
		Schema: iceberg.SchemaSpec{Fields: []iceberg.FieldSpec{
			// The example site's table: the seed's Spark frame.
			{ID: 1, Name: "id", Type: "string", Required: true},
			{ID: 2, Name: "name", Type: "string", Required: true},
			{ID: 3, Name: "value", Type: "double"},
			{ID: 4, Name: "ts", Type: "timestamptz", Required: true},
		}},
		PartitionSpec: []iceberg.PartitionFieldSpec{{SourceID: 4, Transform: "day", Name: "ts_day"}},
		Properties:    map[string]string{"format-version": "2"},
		Ensure:        "present",
	}
	converge(t, sec, iceberg.NewNamespace(), "iceberg.namespace:feature_logs",
		iceberg.NamespaceSpec{Catalog: cat, Namespace: []string{"feature_logs"}, Ensure: "present"})
	converge(t, sec, iceberg.NewTable(), "iceberg.table:feature_logs.historical_features", tbl)
	return &stack{
		secrets: sec,
		cfg: &verify.Config{
			Online: verify.Online{Node: "db1", Socket: srv.Socket(), Database: online, Table: "latest_features",
				User: fsUser, Password: reconciler.SecretRef{Secret: "mariadb/fs_user"}},
			Offline: verify.Offline{Node: "spark1", Table: tbl},
			// Nothing listens here: tests with Weaviate replace it.
			Vector: verify.Vector{Node: "vec1", URL: "http://127.0.0.1:9", Class: "FeatureMetadata",
				Vectorizer: "text2vec-transformers", Properties: []string{"name", "description"}},
		},
	}
}

// converge plans and applies one resource with a kind, as the engine would.
func converge(t *testing.T, sec secrets, k reconciler.Kind, id string, spec any) {
	t.Helper()
	b, _ := json.Marshal(spec)
	r := &reconciler.Resource{ID: reconciler.ID(id), Spec: b}
	if err := k.Validate(r); err != nil {
		t.Fatal(err)
	}
	env := &reconciler.Env{Secrets: sec, Log: slog.New(slog.DiscardHandler), Cache: reconciler.NewCache()}
	p, err := k.Plan(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Apply != nil {
		if err := p.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := k.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

func stepNames(err error) []string {
	var names []string
	for _, e := range flatten(err) {
		var se *verify.StepError
		if errors.As(e, &se) {
			names = append(names, se.Step)
		}
	}
	return names
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestRun_WeaviateDown runs verify against the real online and offline
// stores with nothing listening where Weaviate should be: the two store
// steps pass, and the error names the two vector steps.
func TestRun_WeaviateDown(t *testing.T) {
	s := newStack(t)
	var out bytes.Buffer
	res, err := verify.Run(context.Background(), s.cfg, verify.Options{Feature: verify.SeedFeature(), Secrets: s.secrets, Out: &out})
	t.Log("\n" + out.String())
	if got := stepNames(err); strings.Join(got, ",") != "vector-write,vector-search" {
		t.Fatalf("failed steps %v (%v)", got, err)
	}
	if len(res) != 4 || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	for _, want := range []string{
		"wrote user_123/user_7day_purchase_amount = 150.75 (inserted)",
		"committed snapshot",
		"data file file://",
		"the table holds 1 history rows",
		"FAILED in",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRun_Twice: a second run updates the online value and appends a
// second history row (a second snapshot).
func TestRun_Twice(t *testing.T) {
	s := newStack(t)
	opts := verify.Options{Feature: verify.SeedFeature(), Secrets: s.secrets}
	if res, _ := verify.Run(context.Background(), s.cfg, opts); res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("first run: %v %v", res[0].Err, res[1].Err)
	}
	opts.Feature.Value = 99.5
	var out bytes.Buffer
	opts.Out = &out
	res, _ := verify.Run(context.Background(), s.cfg, opts)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("second run: %v %v\n%s", res[0].Err, res[1].Err, out.String())
	}
	for _, want := range []string{"= 99.5 (updated)", "read back 99.5", "the table holds 2 history rows"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRun_StepFailures(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(s *stack)
		step   string
		says   string
	}{
		{"wrong fs_user password", func(s *stack) { s.secrets["mariadb/fs_user"] = "nope" }, "online", "Access denied"},
		{"missing catalog secret", func(s *stack) { delete(s.secrets, "iceberg/catalog") }, "offline", "secret not found"},
		{"table not in catalog", func(s *stack) { s.cfg.Offline.Table.Name = "nowhere" }, "offline", "table does not exist"},
		{"class without vectorizer", func(s *stack) { s.cfg.Vector.Vectorizer = "none" }, "vector-write", "no vectorizer module"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			tc.break_(s)
			res, err := verify.Run(context.Background(), s.cfg, verify.Options{Feature: verify.SeedFeature(), Secrets: s.secrets})
			if !strings.Contains(strings.Join(stepNames(err), ","), tc.step) {
				t.Fatalf("failed steps %v, want %s among them", stepNames(err), tc.step)
			}
			for _, r := range res {
				if r.Step == tc.step && (r.Err == nil || !strings.Contains(strings.ToLower(r.Err.Error()), strings.ToLower(tc.says))) {
					t.Fatalf("step %s: %v, want it to say %q", tc.step, r.Err, tc.says)
				}
				if strings.Contains(fmt.Sprint(r.Err), "fs-pw") || strings.Contains(fmt.Sprint(r.Err), "catalog-pw") {
					t.Fatalf("an error reveals a password: %v", r.Err)
				}
			}
		})
	}
}

// TestRun_EndToEnd runs the four steps against the real stack: MariaDB,
// the Iceberg JDBC catalog in it, and Weaviate with the t2v-transformers
// stand-in as Docker containers (the images scripts/build-images.sh
// builds). It skips when the images are missing, except in CI.
func TestRun_EndToEnd(t *testing.T) {
	url := startWeaviate(t)
	s := newStack(t)
	s.cfg.Vector.URL = url
	createClass(t, url)
	var out bytes.Buffer
	res, err := verify.Run(context.Background(), s.cfg, verify.Options{Feature: verify.SeedFeature(), Secrets: s.secrets, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"created object",
		"its vector, from text2vec-transformers:",
		"1. user_7day_purchase_amount (distance",
		"the feature just written ranks #1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Again: the object is replaced, not duplicated.
	out.Reset()
	if _, err := verify.Run(context.Background(), s.cfg, verify.Options{Feature: verify.SeedFeature(), Secrets: s.secrets, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "replaced object") {
		t.Errorf("second run did not replace the object:\n%s", out.String())
	}
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
}

// images returns the Weaviate and stand-in vectorizer images, or skips.
func images(t *testing.T) (weaviate, t2v string) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (run scripts/build-images.sh)", why)
		}
		t.Skipf("%s: run scripts/build-images.sh to build it", why)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skip("no docker client")
	}
	weaviate = "fsgit.local/weaviate:1.35.2"
	if err := exec.Command("docker", "image", "inspect", weaviate).Run(); err != nil {
		skip("image " + weaviate + " is missing")
	}
	out, err := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "fsgit.local/t2v-transformers").Output()
	if err != nil {
		skip("cannot list images: " + err.Error())
	}
	for _, l := range strings.Fields(string(out)) {
		if strings.Contains(l, ":standin-") {
			return weaviate, l
		}
	}
	skip("no fsgit.local/t2v-transformers:standin-* image")
	return "", ""
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// startWeaviate runs the vectorizer and Weaviate on a private network, as
// the weaviate_node profile does, publishes Weaviate on a free loopback
// port, waits until it is ready and returns its URL.
func startWeaviate(t *testing.T) string {
	t.Helper()
	wv, t2v := images(t)
	name := fmt.Sprintf("fsgit-verify-test-%d", time.Now().UnixNano())
	docker(t, "network", "create", name)
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", name).Run() })
	docker(t, "run", "-d", "--name", name+"-t2v", "--network", name, "--network-alias", "t2v-transformers", t2v)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name+"-t2v").Run() })
	docker(t, "run", "-d", "--name", name+"-weaviate", "--network", name, "-p", "127.0.0.1::8080",
		"-e", "QUERY_DEFAULTS_LIMIT=25", "-e", "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true",
		"-e", "PERSISTENCE_DATA_PATH=/var/lib/weaviate", "-e", "DEFAULT_VECTORIZER_MODULE=text2vec-transformers",
		"-e", "ENABLE_MODULES=text2vec-transformers", "-e", "TRANSFORMERS_INFERENCE_API=http://t2v-transformers:8080",
		"-e", "CLUSTER_HOSTNAME=node1", wv)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "20", name+"-weaviate").CombinedOutput()
			t.Logf("weaviate logs:\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", name+"-weaviate").Run()
	})
	addr := strings.Fields(docker(t, "port", name+"-weaviate", "8080/tcp"))[0]
	url := "http://" + addr
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/.well-known/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("weaviate not ready at %s after 90s: %v", url, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// createClass creates FeatureMetadata as the example site declares it.
func createClass(t *testing.T, url string) {
	t.Helper()
	body := `{"class":"FeatureMetadata","description":"Feature metadata, vectorized for similarity search.",
		"vectorizer":"text2vec-transformers","moduleConfig":{"text2vec-transformers":{"vectorizeClassName":false}},
		"properties":[{"name":"name","dataType":["text"],"tokenization":"field"},{"name":"description","dataType":["text"]}]}`
	resp, err := http.Post(url+"/v1/schema", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create class: %s", resp.Status)
	}
}
