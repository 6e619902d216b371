//go:build !lean

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/icebergtest"
)

// icebergHelper builds fsgit-iceberg into a temp directory of t and points
// $FSGIT_ICEBERG at it: the iceberg kinds and verify's offline step run
// in it.
func icebergHelper(t *testing.T) {
	t.Helper()
	bin, err := icebergtest.BuildTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(iceberg.EnvExecutable, bin)
}

// exampleCopy copies sites/example into a temp directory and adds a file
// of node-level data (the overrides a test needs: endpoints, paths), as
// the site's comment invites. It returns the site's directory.
func exampleCopy(t *testing.T, overrides string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "example")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "../../sites/example"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cue") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_test_overrides.cue"), []byte("package example\n\n"+overrides), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// secretsDir writes the node's secret files (0600 in a 0700 directory, as
// the files provider demands).
func secretsDir(t *testing.T, values map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	for name, v := range values {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			err = os.Chmod(p, 0o700)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jarMirror lays out stand-in jars as a Maven mirror under a temp
// directory (no Maven repository is reachable here) and returns the
// mirror's file:// URL and the CUE that pins each jar's sha256.
func jarMirror(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "maven2")
	jars := []struct{ key, path string }{
		{"iceberg", "org/apache/iceberg/iceberg-spark-runtime-3.4_2.12/1.4.2/iceberg-spark-runtime-3.4_2.12-1.4.2.jar"},
		{"awsSdk", "software/amazon/awssdk/bundle/2.17.230/bundle-2.17.230.jar"},
		{"mariadbJdbc", "org/mariadb/jdbc/mariadb-java-client/3.1.4/mariadb-java-client-3.1.4.jar"},
	}
	var pins []string
	for _, j := range jars {
		p := filepath.Join(dir, j.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := []byte("stand-in jar " + j.path)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		pins = append(pins, fmt.Sprintf("%s: sha256: %q", j.key, hex.EncodeToString(sum[:])))
	}
	return "file://" + dir, strings.Join(pins, "\n")
}

// parseSparkConf reads spark-defaults.conf as Spark does: one property a
// line, the key up to the first whitespace, the rest (trimmed) the value;
// blank lines and lines starting with # are ignored.
func parseSparkConf(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		if !ok {
			t.Fatalf("spark-defaults.conf: property without a value: %q", line)
		}
		if _, dup := props[k]; dup {
			t.Fatalf("spark-defaults.conf: %s set twice", k)
		}
		props[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return props
}

// TestSparkDefaults_UnderRoot applies the example's offline node under
// --root and reads the written spark-defaults.conf back like Spark: every
// property of the JDBC catalog is there, the password resolved from the
// node's secret, and the file is 0640 or tighter.
//
// The spark account cannot be created under --root (accounts act on the
// host), and the file kind resolves owners on the host, so the test runs
// Spark as nobody:nogroup, which exist everywhere.
func TestSparkDefaults_UnderRoot(t *testing.T) {
	icebergHelper(t)
	mirror, pins := jarMirror(t)
	site := exampleCopy(t, fmt.Sprintf(`nodes: "offline-1": data: {
	iceberg: warehouse: "s3://feature-store-warehouse/prod"
	spark: {
		user:   "nobody"
		group:  "nogroup"
		mirror: %q
		jars: {
%s
		}
	}
}
`, mirror, pins))
	sec := secretsDir(t, map[string]string{"iceberg/catalog_user": "s3cr3t-catalog-pw"})
	root := filepath.Join(t.TempDir(), "root")
	code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", "offline-1", "--root", root, "--secrets-dir", sec)
	conf := filepath.Join(root, "opt/spark/conf/spark-defaults.conf")
	if _, err := os.Stat(conf); err != nil {
		t.Fatalf("apply (exit %d) did not write spark-defaults.conf: %v\n%s%s", code, err, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cr3t-catalog-pw") {
		t.Fatal("the apply report reveals the catalog password")
	}
	props := parseSparkConf(t, conf)
	want := map[string]string{
		"spark.master":                                 "yarn",
		"spark.submit.deployMode":                      "client",
		"spark.sql.extensions":                         "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
		"spark.sql.catalog.prod_catalog":               "org.apache.iceberg.spark.SparkCatalog",
		"spark.sql.catalog.prod_catalog.type":          "jdbc",
		"spark.sql.catalog.prod_catalog.uri":           "jdbc:mariadb://feature-store-online-node.internal:3306/iceberg_catalog_db",
		"spark.sql.catalog.prod_catalog.jdbc.user":     "iceberg_catalog_user",
		"spark.sql.catalog.prod_catalog.jdbc.password": "s3cr3t-catalog-pw",
		"spark.sql.catalog.prod_catalog.warehouse":     "s3://feature-store-warehouse/prod",
		"spark.sql.catalog.prod_catalog.io-impl":       "org.apache.iceberg.aws.s3.S3FileIO",
		"spark.hadoop.fs.s3a.impl":                     "org.apache.hadoop.fs.s3a.S3AFileSystem",
	}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	for k := range props {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected property %s = %q", k, props[k])
		}
	}
	fi, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("spark-defaults.conf mode %o, want 0640 or tighter", perm)
	}
	if u, err := user.Lookup("nobody"); err == nil {
		if st := fi.Sys().(*syscall.Stat_t); fmt.Sprint(st.Uid) != u.Uid {
			t.Errorf("spark-defaults.conf owned by uid %d, want %s (nobody)", st.Uid, u.Uid)
		}
	}

	// A second apply rewrites nothing.
	before := snapshot(t, filepath.Join(root, "opt/spark"))
	fsgit(t, "apply", "--once", "--site", site, "--node", "offline-1", "--root", root, "--secrets-dir", sec)
	after := snapshot(t, filepath.Join(root, "opt/spark"))
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("a second apply touched /opt/spark:\nbefore %v\nafter  %v", before, after)
	}
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// e2eImages returns the local Weaviate and vectorizer images, or skips
// (fails in CI) when scripts/build-images.sh has not built them.
func e2eImages(t *testing.T) (string, string) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (run scripts/build-images.sh)", why)
		}
		t.Skipf("%s: run scripts/build-images.sh to build it", why)
	}
	wv := "fsgit.local/weaviate:1.35.2"
	if err := exec.Command("docker", "image", "inspect", wv).Run(); err != nil {
		skip("image " + wv + " is missing")
	}
	out, _ := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "fsgit.local/t2v-transformers").Output()
	for _, l := range strings.Fields(string(out)) {
		if strings.Contains(l, ":standin-") {
			return wv, l
		}
	}
	skip("no fsgit.local/t2v-transformers:standin-* image")
	return "", ""
}

// TestVerify_ExampleStack converges the example site's three nodes under
// --root against real components (a throwaway MariaDB for the online store
// and the Iceberg catalog, Iceberg tables in a file:// warehouse under the
// root, Weaviate and the vectorizer stand-in in Docker), then runs fsgit
// verify on the site: the four steps must pass, twice.
func TestVerify_ExampleStack(t *testing.T) {
	wv, t2v := e2eImages(t)
	icebergHelper(t)
	db := mariadbtest.Start(t)
	mirror, pins := jarMirror(t)
	port, metricsPort := freePort(t), freePort(t)
	tag := fmt.Sprintf("fsgit-e2e-%d", time.Now().UnixNano()%1e9)
	site := exampleCopy(t, fmt.Sprintf(`nodes: {
	"online-1": data: mariadb: socket: %[1]q
	"offline-1": data: {
		iceberg: warehouse: "file:///var/lib/iceberg/warehouse"
		iceberg: db: socket: %[1]q
		spark: {
			user:   "nobody"
			group:  "nogroup"
			mirror: %[2]q
			jars: {
%[3]s
			}
		}
	}
	"vector-1": data: weaviate: {
		image:     %[4]q
		pull:      "never"
		engine: manage: false
		container: %[6]q
		network:   %[6]q
		port:      %[7]d
		hostIP:    "127.0.0.1"
		metrics: port: %[8]d
		vectorizer: {image: %[5]q, container: "%[6]s-t2v"}
	}
}
`, db.Socket(), mirror, pins, wv, t2v, tag, port, metricsPort))
	sec := secretsDir(t, map[string]string{
		"mariadb/fs_user":            "fs-user-pw",
		"iceberg/catalog_user":       "catalog-pw",
		"monitoring/mysqld_exporter": "exporter-pw",
	})
	root := filepath.Join(t.TempDir(), "root")
	t.Cleanup(func() {
		for _, c := range []string{tag, tag + "-t2v"} {
			_ = exec.Command("docker", "rm", "-f", c).Run()
		}
		_ = exec.Command("docker", "network", "rm", tag).Run()
	})
	stateDir := t.TempDir()
	apply := func(node string) int {
		// One root stands for three machines: each node keeps its own
		// state, or each apply would prune the other nodes' resources.
		state := filepath.Join(stateDir, node+".db")
		code, out, errOut := fsgit(t, "apply", "--once", "--site", site, "--node", node, "--root", root, "--secrets-dir", sec,
			"--state", state, "--summary", state+".summary")
		t.Logf("apply %s: exit %d\n%s%s", node, code, out, errOut)
		return code
	}
	for _, node := range []string{"online-1", "offline-1", "vector-1"} {
		if code := apply(node); code != 2 {
			t.Errorf("first apply of %s: exit %d, want 2 (changes, no failure)", node, code)
		}
	}
	// Weaviate answers once it is ready; the class was created by apply.
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/v1/.well-known/ready", port))

	for run := 1; run <= 2; run++ {
		code, out, errOut := fsgit(t, "verify", "--site", site, "--root", root, "--secrets-dir", sec)
		t.Logf("verify run %d: exit %d\n%s%s", run, code, out, errOut)
		if code != 0 {
			t.Fatalf("verify run %d: exit %d", run, code)
		}
		for _, want := range []string{
			"[1/4] online:", "[2/4] offline:", "[3/4] vector-write:", "[4/4] vector-search:",
			"committed snapshot", "the feature just written ranks #1", "verify: 4 of 4 steps passed",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("verify output lacks %q", want)
			}
		}
		if strings.Contains(out+errOut, "fs-user-pw") || strings.Contains(out+errOut, "catalog-pw") {
			t.Fatal("verify output reveals a password")
		}
		if run == 2 && !strings.Contains(out, fmt.Sprintf("the table holds %d history rows", run)) {
			t.Errorf("second run: history rows not %d", run)
		}
	}

	// The example turns on Weaviate's own metrics
	// (PROMETHEUS_MONITORING_ENABLED), which prometheus_server scrapes:
	// Weaviate serves them on the published port.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatalf("Weaviate's metrics endpoint: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\ngo_goroutines ") {
		t.Fatalf("Weaviate's metrics endpoint: %s\n%.500s", resp.Status, body)
	}
	var names []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "# TYPE ") && !strings.HasPrefix(l, "# TYPE go_") && !strings.HasPrefix(l, "# TYPE process_") && !strings.HasPrefix(l, "# TYPE promhttp_") {
			names = append(names, strings.Fields(l)[2])
		}
	}
	t.Logf("Weaviate's own metrics: %v", names)
	// The series the Weaviate dashboard (schema/profile/dashboards.cue)
	// plots are among them.
	for _, want := range []string{"object_count", "batch_objects_processed_total", "queries_durations_ms", "vector_index_size"} {
		if !slices.Contains(names, want) {
			t.Errorf("Weaviate's metrics lack %s, which its dashboard plots", want)
		}
	}

	// What verify wrote (a row, a snapshot, an object) is data, not drift:
	// applying the nodes again changes nothing.
	for _, node := range []string{"online-1", "offline-1", "vector-1"} {
		if code := apply(node); code != 0 {
			t.Errorf("apply of %s after verify: exit %d, want 0", node, code)
		}
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 90s: %s: %v", url, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
