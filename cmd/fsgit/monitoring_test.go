//go:build !lean

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/mariadbtest"
)

// The monitoring profiles against the real thing: Debian's prometheus,
// prometheus-node-exporter, prometheus-mysqld-exporter and
// prometheus-alertmanager (scripts/setup.sh installs them), a real mariadbd
// and a real fsgit agent, all on 127.0.0.1. Debian's packages start their
// services through systemd, which is not PID 1 here: the test starts the
// binaries itself, with the arguments and files fsgit rendered.

// monitoringBinaries are the Debian binaries the test runs.
var monitoringBinaries = map[string]string{
	"prometheus":    "/usr/bin/prometheus",
	"promtool":      "/usr/bin/promtool",
	"node":          "/usr/bin/prometheus-node-exporter",
	"mysqld":        "/usr/bin/prometheus-mysqld-exporter",
	"alertmanager":  "/usr/bin/prometheus-alertmanager",
	"amtool":        "/usr/bin/amtool",
	"git":           "git",
	"mariadbd":      "/usr/sbin/mariadbd",
	"mariadb-admin": "mariadb-admin",
}

func needMonitoringBinaries(t *testing.T) {
	t.Helper()
	for name, bin := range monitoringBinaries {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s (%s) is not installed (scripts/setup.sh installs it): %v", name, bin, err)
		}
	}
}

// argsOf reads ARGS='...' from a Debian /etc/default file fsgit rendered.
func argsOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ARGS='([^']*)'$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no ARGS line:\n%s", path, b)
	}
	return strings.Fields(string(m[1]))
}

// startDaemon starts a long-running binary, logs to dir/name.log, and
// stops it at the end of the test.
func startDaemon(t *testing.T, dir, name, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- %s log (last 2000 bytes):\n%s", name, tail(b, 2000))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// monitoringSite writes a site of two nodes on 127.0.0.1: db (node and
// mysqld exporters, against srv's socket) and mon (prometheus_server and
// alertmanager), every port a free one, agents scraped on agentPort.
func monitoringSite(t *testing.T, dir, socket string, ports map[string]int) {
	t.Helper()
	site := fmt.Sprintf(`package mon

import "github.com/fsgit/fsgit/schema"

schema.#Site

schemaVersion: "v1"
name:          "mon"
data: monitoring: agent: metricsPort: %[1]d
roles: db: profiles: ["node_exporter", "mysqld_exporter"]
roles: monitoring: profiles: ["prometheus_server", "alertmanager"]
nodes: db: {
	role: "db"
	fqdn: "127.0.0.1"
	data: mariadb: socket: %[2]q
	data: monitoring: nodeExporter: {listen: "127.0.0.1", port: %[3]d}
	data: monitoring: mysqldExporter: {listen: "127.0.0.1", port: %[4]d}
}
nodes: mon: {
	role: "monitoring"
	fqdn: "127.0.0.1"
	data: monitoring: prometheus: {listen: "127.0.0.1", port: %[5]d, scrapeInterval: "1s", evalInterval: "1s"}
	data: monitoring: alertmanager: {
		listen: "127.0.0.1"
		port:   %[6]d
		receiver: webhooks: [{url: "http://127.0.0.1:%[7]d/alerts"}]
	}
}
`, ports["agent"], socket, ports["node"], ports["mysqld"], ports["prometheus"], ports["alertmanager"], ports["webhook"])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.cue"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMonitoring_RealPrometheus applies the monitoring profiles, starts
// every exporter, a real agent, Alertmanager and Prometheus with what fsgit
// rendered, and waits until Prometheus reports every target of the
// generated scrape configuration up, labelled with its node and role. Then
// it stops MariaDB and sees MariaDBDown become active.
func TestMonitoring_RealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mariadbd, Prometheus and exporters")
	}
	needMonitoringBinaries(t)
	srv := mariadbtest.Start(t)
	tmp := t.TempDir()
	ports := map[string]int{}
	for _, k := range []string{"agent", "node", "mysqld", "prometheus", "alertmanager", "webhook"} {
		ports[k] = freePort(t)
	}

	// The site, in a git repository the agent follows.
	repo := filepath.Join(tmp, "repo")
	siteDir := filepath.Join(repo, "sites", "mon")
	monitoringSite(t, siteDir, srv.Socket(), ports)
	cueMod, err := os.ReadFile("../../cue.mod/module.cue")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(repo, "cue.mod"), 0o755)
	os.WriteFile(filepath.Join(repo, "cue.mod", "module.cue"), cueMod, 0o644)
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "site"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	secrets := filepath.Join(tmp, "secrets")
	os.MkdirAll(filepath.Join(secrets, "monitoring"), 0o700)
	password := "Exp0rter-" + fmt.Sprint(time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(secrets, "monitoring", "mysqld_exporter"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Apply both nodes into sandboxes: the MariaDB account and grants go
	// to the real server, the files under the roots.
	roots := map[string]string{"db": filepath.Join(tmp, "root-db"), "mon": filepath.Join(tmp, "root-mon")}
	for _, n := range []string{"db", "mon"} {
		code, out, errOut := fsgit(t, "apply", "--once", "--site", siteDir, "--node", n, "--root", roots[n], "--secrets-dir", secrets)
		if code != 2 {
			t.Fatalf("apply %s: exit %d, want 2 (changes)\n%s\n%s", n, code, out, errOut)
		}
		if strings.Contains(out+errOut, password) {
			t.Fatalf("apply %s printed the exporter's password", n)
		}
	}
	// A second run changes nothing: the grants as MariaDB reports them
	// match what the profile declares.
	if code, out, errOut := fsgit(t, "apply", "--once", "--site", siteDir, "--node", "db", "--root", roots["db"], "--secrets-dir", secrets); code != 0 {
		t.Fatalf("second apply of db: exit %d, want 0\n%s\n%s", code, out, errOut)
	}

	// The exporters, with the arguments fsgit rendered (paths under the
	// sandbox root).
	rooted := func(root string, args []string) []string {
		out := slices.Clone(args)
		for i, a := range out {
			if k, v, ok := strings.Cut(a, "=/"); ok {
				out[i] = k + "=" + filepath.Join(root, "/"+v)
			}
		}
		return out
	}
	startDaemon(t, tmp, "node_exporter", monitoringBinaries["node"], rooted(roots["db"], argsOf(t, filepath.Join(roots["db"], "etc/default/prometheus-node-exporter")))...)
	startDaemon(t, tmp, "mysqld_exporter", monitoringBinaries["mysqld"], rooted(roots["db"], argsOf(t, filepath.Join(roots["db"], "etc/default/prometheus-mysqld-exporter")))...)

	// A real agent, serving its metrics on the port the site declares.
	nodeDir := filepath.Join(tmp, "agent")
	os.MkdirAll(nodeDir, 0o755)
	agentCfg := fmt.Sprintf(`node: "db"
source: {
	url:          "file://%s"
	site:         "sites/mon"
	pollInterval: "2s"
	jitter:       "100ms"
}
root:      %q
stateFile: %q
cacheDir:  %q
socket:    %q
secrets: dir: %q
metrics: listen: "127.0.0.1:%d"
`, repo, filepath.Join(nodeDir, "root"), filepath.Join(nodeDir, "state.db"), filepath.Join(nodeDir, "cache"), filepath.Join(nodeDir, "fsgit.sock"), secrets, ports["agent"])
	if err := os.WriteFile(filepath.Join(nodeDir, "agent.cue"), []byte(agentCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := exec.LookPath("fsgit") // the test binary, as testscript.Main set it up
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, tmp, "agent", self, "agent", "--config", filepath.Join(nodeDir, "agent.cue"))

	// Alertmanager and Prometheus, with the configuration fsgit generated.
	amArgs := rooted(roots["mon"], argsOf(t, filepath.Join(roots["mon"], "etc/default/prometheus-alertmanager")))
	if !slices.Contains(amArgs, "--cluster.listen-address=") {
		t.Fatalf("alertmanager args %v: want the cluster listener off", amArgs)
	}
	startDaemon(t, tmp, "alertmanager", monitoringBinaries["alertmanager"], append(amArgs,
		"--config.file="+filepath.Join(roots["mon"], "etc/prometheus/alertmanager.yml"),
		"--storage.path="+filepath.Join(tmp, "am-data"))...)
	promCfg, err := os.ReadFile(filepath.Join(roots["mon"], "etc/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The rule file's path is the host's; the test's copy is under the root.
	promCfg = []byte(strings.ReplaceAll(string(promCfg), "/etc/prometheus/rules/", filepath.Join(roots["mon"], "etc/prometheus/rules")+"/"))
	cfgPath := filepath.Join(tmp, "prometheus.yml")
	os.WriteFile(cfgPath, promCfg, 0o644)
	if out, err := exec.Command(monitoringBinaries["promtool"], "check", "config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	startDaemon(t, tmp, "prometheus", monitoringBinaries["prometheus"], append(rooted(roots["mon"], argsOf(t, filepath.Join(roots["mon"], "etc/default/prometheus"))),
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(tmp, "prom-data"))...)

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", ports["prometheus"])
	type target struct {
		Labels    map[string]string `json:"labels"`
		Health    string            `json:"health"`
		LastError string            `json:"lastError"`
	}
	var targets []target
	deadline := time.Now().Add(90 * time.Second)
	for {
		var resp struct {
			Data struct {
				ActiveTargets []target `json:"activeTargets"`
			} `json:"data"`
		}
		err := getJSON(api+"targets", &resp)
		targets = resp.Data.ActiveTargets
		up := 0
		for _, tg := range targets {
			if tg.Health == "up" {
				up++
			}
		}
		// Every node's agent (the two share 127.0.0.1 here), db's two
		// exporters, Prometheus and Alertmanager.
		if err == nil && len(targets) == 6 && up == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not all up after 90 s (err %v):\n%+v", err, targets)
		}
		time.Sleep(time.Second)
	}
	var got []string
	for _, tg := range targets {
		got = append(got, tg.Labels["job"]+" "+tg.Labels["node"]+" "+tg.Labels["role"])
	}
	slices.Sort(got)
	if want := []string{"alertmanager mon monitoring", "fsgit db db", "fsgit mon monitoring", "mysqld db db", "node db db", "prometheus mon monitoring"}; !slices.Equal(got, want) {
		t.Errorf("targets (job node role) %q, want %q", got, want)
	}
	// mysqld_exporter reaches MariaDB as its own account; the agent's
	// metrics are fsgit's.
	if v := query(t, api, `mysql_up{node="db"}`); v != "1" {
		t.Fatalf("mysql_up = %q, want 1", v)
	}
	// Every collector the exporter runs by default worked with the
	// account's grants.
	if v := query(t, api, `mysql_exporter_last_scrape_error{node="db"}`); v != "0" {
		t.Fatalf("mysql_exporter_last_scrape_error = %q, want 0: the account lacks a privilege a collector needs", v)
	}
	if v := query(t, api, `count(fsgit_converged{node="db", role="db"})`); v != "1" {
		t.Fatalf("fsgit_converged of db: count %q, want 1", v)
	}

	// Every series the alert rules and the fleet and MariaDB dashboards
	// read exists, under that name, in what the real agent and exporter
	// serve (promtool cannot see a misspelled metric name).
	var names struct {
		Data []string `json:"data"`
	}
	var used []string
	deadline = time.Now().Add(30 * time.Second)
	for {
		if err := getJSON(api+"label/__name__/values", &names); err != nil {
			t.Fatal(err)
		}
		files := exampleContents(t, "monitoring-1")
		text := files["/etc/prometheus/rules/fsgit.rules.yml"] + files["/var/lib/grafana/dashboards/fsgit/fsgit-fleet.json"] + files["/var/lib/grafana/dashboards/fsgit/fsgit-mariadb.json"]
		used = used[:0]
		var missing []string
		for _, m := range regexp.MustCompile(`\b(?:fsgit|mysql|process)_[a-z_]+`).FindAllString(text, -1) {
			m = strings.TrimSuffix(m, "_bucket")
			if slices.Contains(used, m) {
				continue
			}
			used = append(used, m)
			if !slices.ContainsFunc(names.Data, func(n string) bool { return n == m || n == m+"_bucket" }) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("series the rules and dashboards use that nobody serves: %v", missing)
		}
		time.Sleep(time.Second)
	}
	t.Logf("%d series names of the rules and dashboards checked", len(used))

	// MariaDB stopped by hand: mysql_up drops to 0 and MariaDBDown becomes
	// active (pending for its 1m, then firing).
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		var resp struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON(api+"alerts", &resp); err == nil && slices.ContainsFunc(resp.Data.Alerts, func(a struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		}) bool {
			return a.Labels["alertname"] == "MariaDBDown" && a.Labels["node"] == "db"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MariaDBDown not active 60 s after MariaDB stopped")
		}
		time.Sleep(time.Second)
	}
}

func getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// query runs an instant query and returns the value of its only sample
// ("" when there is none).
func query(t *testing.T, api, q string) string {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := getJSON(api+"query?query="+urlQuery(q), &resp)
		if err == nil && len(resp.Data.Result) == 1 {
			return fmt.Sprint(resp.Data.Result[0].Value[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: %v, %d results", q, err, len(resp.Data.Result))
		}
		time.Sleep(time.Second)
	}
}

func urlQuery(q string) string {
	r := strings.NewReplacer(" ", "%20", "{", "%7B", "}", "%7D", "\"", "%22", "=", "%3D", ",", "%2C", "(", "%28", ")", "%29")
	return r.Replace(q)
}

// TestMysqldExporterUser_LeastPrivilege applies the mysqld_exporter
// profile to a real MariaDB and checks that its account can read what the
// exporter needs (status, variables, the process list, replication status,
// performance_schema) and nothing else.
func TestMysqldExporterUser_LeastPrivilege(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mariadbd")
	}
	srv := mariadbtest.Start(t)
	root := srv.RootDB(t)
	for _, q := range []string{"CREATE DATABASE feature_store", "CREATE TABLE feature_store.f (id INT)", "INSERT INTO feature_store.f VALUES (1)"} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	siteDir := filepath.Join(tmp, "site")
	ports := map[string]int{"agent": 9469, "node": 9100, "mysqld": 9104, "prometheus": 9090, "alertmanager": 9093, "webhook": 5001}
	monitoringSite(t, siteDir, srv.Socket(), ports)
	secrets := filepath.Join(tmp, "secrets")
	os.MkdirAll(filepath.Join(secrets, "monitoring"), 0o700)
	password := "Lp-" + fmt.Sprint(time.Now().UnixNano())
	os.WriteFile(filepath.Join(secrets, "monitoring", "mysqld_exporter"), []byte(password+"\n"), 0o600)
	if code, out, errOut := fsgit(t, "apply", "--once", "--site", siteDir, "--node", "db", "--root", filepath.Join(tmp, "root"), "--secrets-dir", secrets); code != 2 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	// REPLICATION CLIENT is BINLOG MONITOR to MariaDB 10.5 and later:
	// the second run must not see drift in it.
	if code, out, errOut := fsgit(t, "apply", "--once", "--site", siteDir, "--node", "db", "--root", filepath.Join(tmp, "root"), "--secrets-dir", secrets); code != 0 {
		t.Fatalf("second apply: exit %d, want 0 (no changes)\n%s\n%s", code, out, errOut)
	}

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "mysqld_exporter", password, "unix", srv.Socket()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var grants []string
	rows, err := db.Query("SHOW GRANTS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	// Exactly these grants (REPLICATION CLIENT is BINLOG MONITOR to
	// MariaDB), whatever else the server has.
	wantGrants := []*regexp.Regexp{
		regexp.MustCompile("^GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON \\*\\.\\* TO `mysqld_exporter`@`localhost` IDENTIFIED BY PASSWORD '\\*[0-9A-F]{40}' WITH MAX_USER_CONNECTIONS 3$"),
		regexp.MustCompile("^GRANT SELECT ON `performance\\\\_schema`\\.\\* TO `mysqld_exporter`@`localhost`$"),
	}
	if len(grants) != len(wantGrants) {
		t.Fatalf("grants %q, want %d", grants, len(wantGrants))
	}
	for i, re := range wantGrants {
		if !re.MatchString(grants[i]) {
			t.Errorf("grant %q, want %s", grants[i], re)
		}
	}

	// What the exporter's collectors read.
	for _, q := range []string{
		"SHOW GLOBAL STATUS",
		"SHOW GLOBAL VARIABLES",
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER <> 'mysqld_exporter'", // PROCESS: other accounts' threads
		"SHOW ENGINE INNODB STATUS",
		"SHOW MASTER STATUS",
		"SHOW SLAVE STATUS",
		"SELECT COUNT(*) FROM performance_schema.setup_consumers",
		"SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Errorf("%s: %v, want allowed", q, err)
			continue
		}
		rows.Close()
	}
	var others int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER <> 'mysqld_exporter'").Scan(&others); err != nil || others == 0 {
		t.Errorf("process list shows %d threads of other accounts (err %v): PROCESS is missing", others, err)
	}
	// And nothing else.
	for _, q := range []string{
		"SELECT * FROM feature_store.f",
		"SELECT * FROM mysql.user",
		"SELECT * FROM mysql.global_priv",
		"CREATE DATABASE nope",
		"UPDATE performance_schema.setup_consumers SET ENABLED = 'YES'",
		"TRUNCATE TABLE performance_schema.events_statements_summary_by_digest",
		"SET GLOBAL max_connections = 10",
		"CREATE USER other@localhost",
		"SHUTDOWN",
	} {
		if _, err := db.Exec(q); err == nil {
			t.Errorf("%s: allowed, want denied", q)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'feature_store'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the exporter sees database feature_store (%d, %v): want it hidden", n, err)
	}
}

// exampleContents renders a node of sites/example and returns the content
// of its files, by path.
func exampleContents(t *testing.T, node string) map[string]string {
	t.Helper()
	site, err := desired.LoadDir(context.Background(), "../../sites/example")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := site.Catalog(node)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range cat.Resources {
		if r.ID.Kind() != "file" {
			continue
		}
		var spec struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		}
		if err := json.Unmarshal(r.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		out[spec.Path] = spec.Content
	}
	return out
}

// TestMonitoring_ScrapeConfigGolden: the Prometheus configuration generated
// for the example site's monitoring-1 (every node's exporters and agent,
// Weaviate's metrics, the node's role as a label) is the golden file (go
// test -run TestMonitoring_ScrapeConfigGolden -update after a deliberate
// change).
func TestMonitoring_ScrapeConfigGolden(t *testing.T) {
	files := exampleContents(t, "monitoring-1")
	got := files["/etc/prometheus/prometheus.yml"]
	if got == "" {
		t.Fatal("monitoring-1 has no /etc/prometheus/prometheus.yml")
	}
	// Prometheus accepts it (with the rule file beside it).
	if promtool, err := exec.LookPath(monitoringBinaries["promtool"]); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "fsgit.rules.yml"), []byte(files["/etc/prometheus/rules/fsgit.rules.yml"]), 0o644)
		cfg := filepath.Join(dir, "prometheus.yml")
		os.WriteFile(cfg, []byte(strings.ReplaceAll(got, "/etc/prometheus/rules/", dir+"/")), 0o644)
		if out, err := exec.Command(promtool, "check", "config", cfg).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	}
	path := filepath.Join("testdata/golden", "prometheus-example.yml")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("prometheus.yml of monitoring-1 differs from %s (run with -update after a deliberate change):\n%s", path, firstDiff(got, string(want)))
	}
}

// TestMonitoring_AlertRulesPromtool: the rule file fsgit ships passes
// promtool check rules, and promtool's rule unit tests show each alert
// firing on the series that should fire it, and not before its time.
func TestMonitoring_AlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath(monitoringBinaries["promtool"])
	if err != nil {
		t.Skipf("promtool is not installed (scripts/setup.sh installs prometheus): %v", err)
	}
	rules := exampleContents(t, "monitoring-1")["/etc/prometheus/rules/fsgit.rules.yml"]
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "fsgit.rules.yml")
	if err := os.WriteFile(rulesPath, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 11 rules found") {
		t.Fatalf("promtool check rules:\n%s\nwant 11 rules", out)
	}

	tests, err := os.ReadFile("testdata/monitoring/rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	testPath := filepath.Join(dir, "rules_test.yml")
	if err := os.WriteFile(testPath, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", testPath)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestMonitoring_AlertmanagerConfigAmtool: the Alertmanager configuration
// with the example's receiver passes amtool check-config.
func TestMonitoring_AlertmanagerConfigAmtool(t *testing.T) {
	amtool, err := exec.LookPath(monitoringBinaries["amtool"])
	if err != nil {
		t.Skipf("amtool is not installed (scripts/setup.sh installs prometheus-alertmanager): %v", err)
	}
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(path, []byte(exampleContents(t, "monitoring-1")["/etc/prometheus/alertmanager.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(amtool, "check-config", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") || !strings.Contains(string(out), " 1 receivers") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// TestMonitoring_DashboardsGrafanaSchema checks the provisioned dashboards
// against Grafana's dashboard schema, as the types of
// github.com/grafana/grafana-foundation-sdk (generated from Grafana's
// schema) read it strictly: no field missing, none unknown, none of the
// wrong type, every panel's type a known panel plugin. Grafana itself
// cannot run here (not in Debian; its Go module is AGPL).
func TestMonitoring_DashboardsGrafanaSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files := exampleContents(t, "monitoring-1")
	var names []string
	for p := range files {
		if strings.HasPrefix(p, "/var/lib/grafana/dashboards/fsgit/") {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	if want := []string{"/var/lib/grafana/dashboards/fsgit/fsgit-fleet.json", "/var/lib/grafana/dashboards/fsgit/fsgit-mariadb.json", "/var/lib/grafana/dashboards/fsgit/fsgit-weaviate.json"}; !slices.Equal(names, want) {
		t.Fatalf("dashboards %q, want %q", names, want)
	}
	// The SDK returns an empty cog.BuildErrors, not nil, when all is
	// well.
	real := func(err error) error {
		if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
			return nil
		}
		return err
	}
	check := func(raw []byte) error {
		var d dashboard.Dashboard
		if err := real(d.UnmarshalJSONStrict(raw)); err != nil {
			return err
		}
		if err := real(d.Validate()); err != nil {
			return err
		}
		// Each panel again, on its own: the SDK's PanelOrRowPanel drops a
		// panel that decodes without error (the empty BuildErrors again),
		// so the dashboard's decode alone checks no panel.
		var raw0 struct {
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(raw, &raw0); err != nil {
			return err
		}
		if len(raw0.Panels) == 0 {
			return fmt.Errorf("no panels")
		}
		for i, rp := range raw0.Panels {
			var p dashboard.Panel
			if err := real(p.UnmarshalJSONStrict(rp)); err != nil {
				return fmt.Errorf("panel %d: %w", i+1, err)
			}
			if err := real(p.Validate()); err != nil {
				return fmt.Errorf("panel %d: %w", i+1, err)
			}
			// And each query, as a Prometheus query (the SDK's panel
			// decode drops those too).
			var raw1 struct {
				Targets []json.RawMessage `json:"targets"`
			}
			if err := json.Unmarshal(rp, &raw1); err != nil {
				return err
			}
			if len(raw1.Targets) == 0 {
				return fmt.Errorf("panel %d has no query", i+1)
			}
			for j, rt := range raw1.Targets {
				var q prometheus.Dataquery
				if err := real(q.UnmarshalJSONStrict(rt)); err != nil {
					return fmt.Errorf("panel %d, query %d: %w", i+1, j+1, err)
				}
				if err := real(q.Validate()); err != nil {
					return fmt.Errorf("panel %d, query %d: %w", i+1, j+1, err)
				}
				if q.Expr == "" {
					return fmt.Errorf("panel %d, query %d: no expr", i+1, j+1)
				}
			}
		}
		return nil
	}
	for _, n := range names {
		if err := check([]byte(files[n])); err != nil {
			t.Errorf("%s does not follow Grafana's dashboard schema: %v", n, err)
		}
	}
	// The check can fail: a misspelled field and a wrong type are caught.
	fleet := files[names[0]]
	for _, bad := range []string{
		strings.Replace(fleet, `"schemaVersion"`, `"schemaVerison"`, 1),
		strings.Replace(fleet, `"editable": false`, `"editable": "no"`, 1),
		strings.Replace(fleet, `"legendFormat"`, `"legendFromat"`, 1),
		strings.Replace(fleet, `"w": 12`, `"w": "12"`, 1),
	} {
		if err := check([]byte(bad)); err == nil {
			t.Errorf("a broken dashboard passed the schema check")
		}
	}
	prov := files["/etc/grafana/provisioning/dashboards/fsgit.yaml"]
	if !strings.Contains(prov, "path: /var/lib/grafana/dashboards/fsgit") {
		t.Errorf("the provisioning file does not point at the dashboards:\n%s", prov)
	}
}
