package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// hostile is a node name and an error text a compromised node could
// publish: markup that must reach the browser as text.
const (
	hostileName  = `<img src=x onerror=alert(1)>`
	hostileError = `</pre><script>alert("pwned")</script><pre>`
)

// publish commits documents to the status branch of url, as agents do.
func publish(t testing.TB, url string, docs ...*status.Node) {
	t.Helper()
	p := &status.Publisher{URL: url, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
	for _, n := range docs {
		if n.Node == hostileName {
			plant(t, url, n)
			continue
		}
		if err := p.Publish(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

// plant writes n onto the status branch with the git CLI, as a compromised
// node that does not go through status.Publisher (which refuses a name
// like hostileName) would: the server must show whatever the branch holds
// safely.
func plant(t testing.TB, url string, n *status.Node) {
	t.Helper()
	w := gittest.NewWork(t, url)
	if w.Git("ls-remote", "origin", status.DefaultBranch) != "" {
		w.Git("fetch", "--quiet", "origin", status.DefaultBranch)
		w.Git("checkout", "--quiet", "-B", "main", "FETCH_HEAD")
	}
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(w.Dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.Dir, "nodes", n.Node+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	w.Git("add", "-A")
	w.Git("commit", "--quiet", "-m", "status of a hostile node")
	w.Git("push", "--quiet", "origin", "HEAD:refs/heads/"+status.DefaultBranch)
}

const (
	rev1 = "1111111111111111111111111111111111111111"
	rev2 = "2222222222222222222222222222222222222222"
	rev3 = "3333333333333333333333333333333333333333"
)

// sampleFleet is one node in each state, and a hostile one.
func sampleFleet(now time.Time) []*status.Node {
	src := status.Source{URL: "http://git.example/site.git", Branch: "main", Reachable: true, LastSuccess: now}
	run := func(rev string, counts map[reconciler.Outcome]int, exit int) *status.Run {
		return &status.Run{Revision: rev, Started: now.Add(-time.Minute), Duration: 1500000000, Trigger: "commit", Counts: counts, ExitCode: exit}
	}
	return []*status.Node{
		{Node: "online-1", Site: "example", Role: "online", AppliedRevision: rev2, DesiredRevision: rev2, Converged: true,
			Since: now.Add(-time.Hour), LastRun: run(rev2, map[reconciler.Outcome]int{reconciler.Changed: 2, reconciler.Unchanged: 9}, 2),
			Source: src, Updated: now},
		{Node: "online-2", Site: "example", Role: "online", AppliedRevision: rev1, DesiredRevision: rev2,
			Since: now.Add(-time.Minute), LastRun: run(rev2, map[reconciler.Outcome]int{reconciler.Failed: 1, reconciler.Unchanged: 9}, 4),
			Failed: []status.Item{{ID: "mariadb.user:fs_app@%", Reason: "connect: connection refused"}}, Source: src, Updated: now},
		{Node: "offline-1", Site: "example", Role: "offline", AppliedRevision: rev2, DesiredRevision: rev2,
			Since: now.Add(-time.Minute), LastRun: run(rev2, map[reconciler.Outcome]int{reconciler.PendingDestroy: 1}, 0),
			PendingDestroy: []status.Item{{ID: "mariadb.grant:fs_user@%/x", Reason: "left the catalog, and removing it is destructive",
				Changes: []reconciler.Change{{Field: "privileges", Before: "SELECT", After: "(none)", Class: reconciler.Destructive}}}},
			Holds:  []status.Hold{{ID: "service:spark-thrift", By: "alice", Reason: "<i>investigating</i> a slow query", Since: now.Add(-time.Minute), Until: now.Add(time.Hour)}},
			Pinned: &status.Pin{Revision: rev1, By: "alice", Reason: "rev2 broke the catalog", Since: now.Add(-time.Minute)},
			Source: src, Updated: now},
		{Node: "vector-1", Site: "example", Role: "vector", AppliedRevision: rev2, DesiredRevision: rev2, Converged: true,
			Refused: []status.Refusal{{Commit: rev3, Reason: "sites/example/roles.cue:12:3: roles.vector.replicas: invalid value 0 (out of bound >=1)", At: now}},
			Since:   now.Add(-time.Hour), Source: src, Updated: now.Add(-3 * time.Hour)},
		{Node: hostileName, Role: "<b>role</b>", AppliedRevision: rev1, DesiredRevision: rev2, LastRun: run(rev2, map[reconciler.Outcome]int{reconciler.Failed: 1}, 4),
			Failed: []status.Item{{ID: "file:/etc/x", Reason: hostileError}}, Source: status.Source{Error: hostileError}, Updated: now},
	}
}

// newTestServer serves the status branch of url, read once.
func newTestServer(t testing.TB, url string, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	opts.URL, opts.CacheDir = url, filepath.Join(t.TempDir(), "cache")
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close the server: %v", err)
		}
	})
	s.Poll(context.Background())
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

func get(t testing.TB, url string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// TestServe_pages reads a status branch served by git http-backend and
// checks what every page says, as HTML and as JSON.
func TestServe_pages(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	url := gs.URL("site.git")
	now := time.Now().UTC().Truncate(time.Second)
	publish(t, url, sampleFleet(now)...)
	// A second version of online-1's document: its history has two.
	later := sampleFleet(now)[0]
	later.AppliedRevision, later.Updated = rev1, now.Add(time.Second)
	publish(t, url, later)
	srv, hs := newTestServer(t, url, Options{StaleAfter: 2 * time.Hour})

	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 5 || f.Shown != 5 || f.Stale != 1 {
		t.Fatalf("fleet: total %d shown %d stale %d, want 5 5 1", f.Total, f.Shown, f.Stale)
	}
	want := map[string]string{"online-1": StateConverged, "online-2": StateFailing, "offline-1": StatePending,
		"vector-1": StateRefused, hostileName: StateFailing}
	for _, r := range f.Rows {
		if want[r.Node] != r.State {
			t.Errorf("node %q: state %q, want %q", r.Node, r.State, want[r.Node])
		}
	}
	getJSON(t, hs.URL+"/?format=json&role=online&state=failing", &f)
	if f.Shown != 1 || f.Rows[0].Node != "online-2" {
		t.Fatalf("filter role=online state=failing: %+v", f.Rows)
	}
	getJSON(t, hs.URL+"/?format=json&state=stale", &f)
	if f.Shown != 1 || f.Rows[0].Node != "vector-1" {
		t.Fatalf("filter state=stale: %+v", f.Rows)
	}

	for _, r := range f.Rows {
		if r.Node == "offline-1" {
			t.Fatalf("filter state=stale shows offline-1")
		}
	}
	getJSON(t, hs.URL+"/?format=json&role=offline", &f)
	if f.Shown != 1 || f.Rows[0].Holds != 1 || f.Rows[0].Pinned != rev1 {
		t.Fatalf("offline-1's holds and pin in its row: %+v", f.Rows)
	}
	if code, body := get(t, hs.URL+"/node/offline-1"); code != 200 || !strings.Contains(body, `id="holds"`) ||
		!strings.Contains(body, "service:spark-thrift") || !strings.Contains(body, "Rolled back by hand") ||
		!strings.Contains(body, "&lt;i&gt;investigating&lt;/i&gt;") {
		t.Fatalf("offline-1's page does not show its hold and pin as text (%d):\n%s", code, body)
	}

	var np NodePage
	getJSON(t, hs.URL+"/node/online-1?format=json", &np)
	if len(np.History) != 2 || np.History[0].AppliedRevision != rev2 || np.History[1].AppliedRevision != rev1 {
		t.Fatalf("online-1 history: %+v", np.History)
	}
	if np.Document.AppliedRevision != rev1 {
		t.Fatalf("online-1 document: applied %s", np.Document.AppliedRevision)
	}

	var rp Revision
	getJSON(t, hs.URL+"/revision/"+rev2[:8]+"?format=json", &rp)
	names := func(ls []Lag) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Node)
		}
		return out
	}
	if got := names(rp.Running); !reflect.DeepEqual(got, []string{"offline-1", "vector-1"}) {
		t.Errorf("running %s: %v", rev2[:8], got)
	}
	if got := names(rp.Lagging); len(got) != 3 {
		t.Errorf("lagging %s: %v", rev2[:8], got)
	}
	getJSON(t, hs.URL+"/revision/"+rev3+"?format=json", &rp)
	if got := names(rp.Refused); !reflect.DeepEqual(got, []string{"vector-1"}) || !strings.Contains(rp.Refused[0].Reason, "roles.cue:12:3") {
		t.Errorf("refused %s: %+v", rev3, rp.Refused)
	}

	for _, p := range []string{"/", "/?role=online", "/node/online-2", "/node/offline-1", "/node/vector-1",
		"/node/" + strings.ReplaceAll(hostileName, " ", "%20"), "/revision/" + rev2, "/healthz"} {
		code, body := get(t, hs.URL+p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", p, code, body)
		}
		for _, raw := range []string{"<script", "<img", "<b>role"} {
			if strings.Contains(body, raw) {
				t.Errorf("GET %s: the page holds %q unescaped", p, raw)
			}
		}
	}
	_, body := get(t, hs.URL+"/node/offline-1")
	if !strings.Contains(body, "allowDestroy: true") {
		t.Errorf("the pending destroy's page has no allowDestroy hint")
	}
	_, body = get(t, hs.URL+"/node/vector-1")
	if !strings.Contains(body, "roles.cue:12:3") {
		t.Errorf("the refused commit's CUE error and its position are not shown")
	}
	if code, _ := get(t, hs.URL+"/node/nobody"); code != http.StatusNotFound {
		t.Errorf("an unknown node: %d, want 404", code)
	}
	_, body = get(t, hs.URL+"/metrics")
	for _, m := range []string{`fsgit_serve_polls_total{result="changed"} 1`, "fsgit_serve_nodes 5", `fsgit_serve_requests_total{code="200",page="fleet"}`, "process_resident_memory_bytes"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// A document that does not decode, pushed by hand: its node is shown
	// unreadable, with the error (escaped), and the others still are.
	w := gittest.NewWork(t, url)
	w.Git("fetch", "--quiet", "origin", status.DefaultBranch)
	w.Git("checkout", "--quiet", "-B", "status", "FETCH_HEAD")
	w.WriteFile("nodes/broken.json", `{"node": "broken", "converged": "<script>alert(1)</script>"`)
	w.Git("add", "nodes/broken.json")
	w.Git("commit", "--quiet", "-m", "status: broken")
	w.Git("push", "--quiet", "origin", "HEAD:"+status.DefaultBranch)
	srv.Poll(context.Background())
	getJSON(t, hs.URL+"/?format=json&state=unreadable", &f)
	if f.Total != 6 || f.Shown != 1 || f.Rows[0].Node != "broken" || f.Rows[0].Unreadable == "" || f.Branch.Unreadable == "" {
		t.Fatalf("an unreadable document: %+v", f)
	}
	for _, p := range []string{"/", "/node/broken"} {
		code, body := get(t, hs.URL+p)
		if code != http.StatusOK || strings.Contains(body, "<script") || !strings.Contains(body, "broken.json") {
			t.Errorf("GET %s with an unreadable document: %d, want the error shown, escaped\n%s", p, code, grep(body, "broken"))
		}
	}

	// A poll with no new commit reads nothing; one after a push reads it.
	srv.Poll(context.Background())
	publish(t, url, &status.Node{Node: "new-1", Role: "online", Updated: now})
	srv.Poll(context.Background())
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 7 {
		t.Fatalf("after a push: %d nodes, want 7", f.Total)
	}
	_, body = get(t, hs.URL+"/metrics")
	if !strings.Contains(body, `fsgit_serve_polls_total{result="unchanged"} 1`) || !strings.Contains(body, `fsgit_serve_polls_total{result="changed"} 3`) {
		t.Errorf("polls counted wrong:\n%s", grep(body, "fsgit_serve_polls_total"))
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// TestServe_emptyAndUnreachable: a repository without a status branch is
// an empty fleet; a server that goes away leaves the last read shown, with
// the poll's error, and /healthz failing.
func TestServe_emptyAndUnreachable(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	url := gs.URL("site.git")
	srv, hs := newTestServer(t, url, Options{})
	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 0 || f.Branch.PollError != "" {
		t.Fatalf("no status branch: %+v", f)
	}
	if _, body := get(t, hs.URL+"/"); !strings.Contains(body, "no node has published yet") {
		t.Errorf("no status branch: the page does not say so")
	}
	srv.Poll(context.Background())
	_, body := get(t, hs.URL+"/metrics")
	if !strings.Contains(body, `fsgit_serve_polls_total{result="unchanged"} 1`) {
		t.Errorf("a second poll without a status branch is not counted unchanged:\n%s", grep(body, "polls_total"))
	}
	publish(t, url, sampleFleet(time.Now())[:2]...)
	srv.Poll(context.Background())
	if code, _ := get(t, hs.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after a read: %d", code)
	}
	gs.Stop()
	srv.Poll(context.Background())
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 2 || f.Branch.PollError == "" {
		t.Fatalf("git server down: total %d, poll error %q; want the last read and an error", f.Total, f.Branch.PollError)
	}
	if code, _ := get(t, hs.URL+"/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz with the git server down: %d, want 503", code)
	}
}

// TestPages_roundTrip: every page's JSON document reads back as written.
func TestPages_roundTrip(t *testing.T) {
	gens := jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}
	jsondoctest.RoundTrip[Fleet](t, jsondoctest.Options{Generators: gens})
	jsondoctest.RoundTrip[NodePage](t, jsondoctest.Options{Generators: gens})
	jsondoctest.RoundTrip[Revision](t, jsondoctest.Options{Generators: gens})
	jsondoctest.RoundTrip[Health](t, jsondoctest.Options{Generators: gens})
}

// TestServe_access: only GET and HEAD; with credentials configured, none
// or wrong ones get 401 on every path.
func TestServe_access(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	url := gs.URL("site.git")
	publish(t, url, sampleFleet(time.Now())[:1]...)
	const token = "0123456789abcdef-token"
	_, hs := newTestServer(t, url, Options{Access: Access{User: "ops", Password: "s3cret-password", Token: token}})
	for _, p := range []string{"/", "/node/online-1", "/revision/" + rev2, "/healthz", "/metrics", "/style.css", "/?format=json"} {
		if code, _ := get(t, hs.URL+p); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
		if code, _ := get(t, hs.URL+p, "Authorization", "Bearer wrong-token-0123456789"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, code)
		}
		if code, _ := get(t, hs.URL+p, "Authorization", "Bearer "+token); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d, want 200", p, code)
		}
		req, _ := http.NewRequest(http.MethodGet, hs.URL+p, nil)
		req.SetBasicAuth("ops", "s3cret-password")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with basic auth: %v %v", p, resp.StatusCode, err)
		} else {
			resp.Body.Close()
		}
		req.SetBasicAuth("ops", "wrong")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %v %v", p, resp.StatusCode, err)
		} else {
			resp.Body.Close()
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(m, hs.URL+"/", strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: %d, want 405", m, resp.StatusCode)
		}
	}
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q allows more than the page needs", csp)
	}
}

// TestServe_rebinding: a server open to anyone on loopback answers only
// requests addressed to loopback, not a page's script that reached it
// through a name of its own resolving to 127.0.0.1.
func TestServe_rebinding(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	_, hs := newTestServer(t, gs.URL("site.git"), Options{})
	for host, want := range map[string]int{"evil.example:8080": http.StatusMisdirectedRequest, "evil.example": http.StatusMisdirectedRequest,
		"localhost:8080": http.StatusOK, "127.0.0.1": http.StatusOK, "[::1]:80": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/?format=json", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// With credentials, the host does not matter: they are the check.
	_, hs = newTestServer(t, gs.URL("site.git"), Options{Access: Access{Token: "0123456789abcdef"}})
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/", nil)
	req.Host = "fleet.example"
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Host fleet.example with the token: %d", resp.StatusCode)
	}
}

func TestCheckListen(t *testing.T) {
	auth := Access{Token: "0123456789abcdef"}
	for _, c := range []struct {
		addr   string
		access Access
		ok     bool
	}{
		{"127.0.0.1:8080", Access{}, true},
		{"[::1]:8080", Access{}, true},
		{"localhost:8080", Access{}, true},
		{"127.0.0.2:8080", Access{}, true},
		{"0.0.0.0:8080", Access{}, false},
		{":8080", Access{}, false},
		{"[::]:8080", Access{}, false},
		{"10.1.2.3:8080", Access{}, false},
		{"example.com:8080", Access{}, false},
		{"0.0.0.0:8080", auth, true},
		{":8080", Access{User: "a", Password: "password"}, true},
		{"nonsense", Access{}, false},
	} {
		err := CheckListen(c.addr, c.access)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %+v) = %v, want ok=%v", c.addr, c.access, err, c.ok)
		}
	}
}

// TestServe_neverShowsASecret is the canary test: the repository's
// password (in the URL and in the credentials) and the readers' token
// appear on no page, in no error, as HTML, JSON or metrics, even when the
// git server refuses the request or is gone and the error quotes the URL.
func TestServe_neverShowsASecret(t *testing.T) {
	const canary = "CANARY-7f3a9c-secret"
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	publish(t, gs.URL("site.git"), sampleFleet(time.Now())...)
	url := strings.Replace(gs.URL("site.git"), "http://", "http://ops:"+canary+"@", 1)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, hs := newTestServer(t, url, Options{Redact: []string{canary + "-file"}, Log: log})
	pages := []string{"/", "/?format=json", "/node/online-1", "/node/online-1?format=json", "/revision/" + rev2,
		"/revision/" + rev2 + "?format=json", "/healthz", "/healthz?format=json", "/metrics", "/node/missing"}
	check := func(when string) {
		for _, p := range pages {
			_, body := get(t, hs.URL+p)
			if strings.Contains(body, "CANARY") {
				t.Errorf("%s: GET %s shows the secret:\n%s", when, p, grep(body, "CANARY"))
			}
		}
	}
	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 5 {
		t.Fatalf("read %d nodes with credentials in the URL, want 5", f.Total)
	}
	check("read")
	gs.Stop()
	srv.Poll(context.Background())
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Branch.PollError == "" {
		t.Fatal("no poll error with the git server down")
	}
	check("git server down")
	if strings.Contains(logs.String(), "CANARY") {
		t.Errorf("the log shows the secret:\n%s", grep(logs.String(), "CANARY"))
	}

	// The error of a repository that does not exist quotes the URL.
	srv2, hs2 := newTestServer(t, "http://ops:"+canary+"@127.0.0.1:1/none.git", Options{})
	srv2.Poll(context.Background())
	_, body := get(t, hs2.URL+"/?format=json")
	if !strings.Contains(body, "pollError") || strings.Contains(body, canary) {
		t.Errorf("unreachable repository: want a poll error without the secret:\n%s", body)
	}
	if testing.Verbose() {
		os.Stdout.WriteString(grep(body, "pollError"))
	}
}

// TestServe_namesInPaths: a node name a path would split or a query would
// cut (a document's name is whatever the node wrote) links to its own
// page, and its page is found.
func TestServe_namesInPaths(t *testing.T) {
	s, err := New(Options{URL: "http://127.0.0.1:1/none.git", CacheDir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a/b", "../../etc/passwd", "x?format=json", "100%", "space name", "#frag"}
	snap := &Snapshot{Tip: rev1, History: map[string][]Point{}}
	for _, n := range names {
		snap.Nodes = append(snap.Nodes, status.Node{Node: n, Role: "r"})
	}
	slices.SortFunc(snap.Nodes, func(a, b status.Node) int { return strings.Compare(a.Node, b.Node) })
	s.snap = snap
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	_, fleet := get(t, hs.URL+"/")
	for _, n := range names {
		href := "/node/" + neturl.PathEscape(n)
		if !strings.Contains(fleet, `href="`+strings.ReplaceAll(href, "&", "&amp;")+`"`) {
			t.Errorf("the fleet page has no link %s for %q", href, n)
		}
		var np NodePage
		getJSON(t, hs.URL+href+"?format=json", &np)
		if np.Document.Node != n {
			t.Errorf("GET %s: node %q, want %q", href, np.Document.Node, n)
		}
	}
}

// TestServe_frozenMirror: three nodes of one site, db3 on a mirror that
// stopped a day ago (its own maxTipAge 24h). The fleet page shows every
// node's source tip and its age, counts db3 as frozen (its source looks
// frozen, and its tip is behind the others' by more than the threshold),
// filters on it, and the node page says why; with no maxTipAge anywhere,
// the server's MaxTipLag flags db3 behind all the same.
func TestServe_frozenMirror(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("status.git")
	url := gs.URL("status.git")
	now := time.Now().UTC().Truncate(time.Second)
	newTip, oldTip := strings.Repeat("a1", 20), strings.Repeat("0b", 20)
	doc := func(name, tip string, ago, maxTipAge time.Duration) *status.Node {
		return &status.Node{Node: name, Site: "prod", Role: "db", Converged: true, AppliedRevision: tip, DesiredRevision: tip, Updated: now,
			Source: status.Source{URL: "https://" + name + ".mirror.example.org/site.git", Branch: "main", Reachable: true,
				Tip: tip, TipTime: now.Add(-ago), TipSeen: now.Add(-ago), MaxTipAge: jsondoc.Seconds(maxTipAge)}}
	}
	publish(t, url, doc("db1", newTip, 10*time.Minute, 24*time.Hour), doc("db2", newTip, 10*time.Minute, 24*time.Hour),
		doc("db3", oldTip, 26*time.Hour, 24*time.Hour))
	_, hs := newTestServer(t, url, Options{})

	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	if f.Total != 3 || f.Frozen != 1 {
		t.Fatalf("fleet: total %d frozen %d, want 3 1", f.Total, f.Frozen)
	}
	for _, r := range f.Rows {
		if r.Tip == "" || r.TipTime.IsZero() || r.TipAge == 0 {
			t.Errorf("%s: no tip: %+v", r.Node, r)
		}
		if frozen := r.Node == "db3"; frozen != (r.Frozen != "") || frozen != (r.BehindFleet != "") || frozen != r.TipMinority {
			t.Errorf("%s: frozen %q, behind %q, minority %v", r.Node, r.Frozen, r.BehindFleet, r.TipMinority)
		}
	}
	f = Fleet{}
	getJSON(t, hs.URL+"/?format=json&state=frozen", &f)
	if f.Shown != 1 || f.Rows[0].Node != "db3" || f.Rows[0].TipBehind.D() != 25*time.Hour+50*time.Minute || f.Rows[0].TipAge.D() < 26*time.Hour {
		t.Fatalf("filter state=frozen: %+v", f.Rows)
	}
	code, body := get(t, hs.URL+"/")
	if code != http.StatusOK || !strings.Contains(body, `"><b>1</b> frozen</a>`) ||
		!strings.Contains(body, `<span class="badge frozen bad" title="the source https://db3.mirror.example.org/site.git (branch main) has served commit 0b0b0b0b0b0b`) ||
		!strings.Contains(body, `<code class="behind" title="not the tip most nodes report">0b0b0b0b0b0b</code>`) {
		t.Fatalf("fleet page:\n%s", grep(body, "frozen"))
	}
	code, body = get(t, hs.URL+"/node/db3")
	if code != http.StatusOK || !strings.Contains(body, `<p class="alert" id="frozen">The source looks frozen: `) ||
		!strings.Contains(body, `<p class="alert" id="behind-fleet">Behind the fleet: its source tip 0b0b0b0b0b0b`) {
		t.Fatalf("node page:\n%s", grep(body, "source"))
	}

	// No node sets maxTipAge: the server's threshold flags db3 behind.
	gs.NewRepo("plain.git")
	plain := gs.URL("plain.git")
	publish(t, plain, doc("db1", newTip, 10*time.Minute, 0), doc("db3", oldTip, 26*time.Hour, 0))
	_, hs = newTestServer(t, plain, Options{MaxTipLag: time.Hour})
	f = Fleet{}
	getJSON(t, hs.URL+"/?format=json&state=frozen", &f)
	if f.Shown != 1 || f.Rows[0].Node != "db3" || f.Rows[0].Frozen != "" || f.Rows[0].BehindFleet == "" || f.MaxTipLag.D() != time.Hour {
		t.Fatalf("with MaxTipLag 1h: %+v", f)
	}
}
