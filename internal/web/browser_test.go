package web

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds headless Chromium (Debian's chromium package;
// FSGIT_CHROMIUM overrides). Without it the browser tests skip, saying
// why, unless CI=true, where a missing browser is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FSGIT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed and CI=true: scripts/setup.sh installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium (scripts/setup.sh does) to run the browser tests")
	return ""
}

// screenshotDir is where screenshots go: $FSGIT_SCREENSHOTS, or a
// temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("FSGIT_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestAgents_fleet serves a status branch written by real agents. Over
// HTTP: every page, as HTML and JSON, holds no trace of the secret one of
// them wrote into a file (the canary). In headless Chromium: what a person
// would see: the
// counts, the failing node shown failing (in red: the embedded style sheet
// applies under the Content-Security-Policy), the filters working through
// the form, the hostile node's name shown as text with no element or
// dialog coming of it; it saves a screenshot of each page.
func TestAgents_fleet(t *testing.T) {
	if testing.Short() {
		t.Skip("real agents and a browser: skipped in -short")
	}
	fleet := newAgentFleet(t)
	_, hs := newTestServer(t, fleet.url, Options{})
	var f Fleet
	getJSON(t, hs.URL+"/?format=json", &f)
	pages := []string{"/metrics", "/healthz", "/revision/" + fleet.c1, "/revision/" + fleet.c3}
	for _, r := range f.Rows {
		pages = append(pages, "/node/"+url.PathEscape(r.Node))
	}
	for _, p := range append(pages, "/") {
		for _, q := range []string{"", "?format=json"} {
			if strings.Contains(p, "metrics") && q != "" {
				continue
			}
			code, body := get(t, hs.URL+p+q)
			if code != 200 {
				t.Errorf("GET %s%s: %d", p, q, code)
			}
			if strings.Contains(body, "CANARY") {
				t.Errorf("GET %s%s shows the secret:\n%s", p, q, grep(body, "CANARY"))
			}
		}
	}
	var online NodePage
	getJSON(t, hs.URL+"/node/online-1?format=json", &online)
	if online.Row.State != StateConverged || len(online.History) < 3 {
		t.Fatalf("online-1, which wrote the secret: state %s, %d documents of history", online.Row.State, len(online.History))
	}
	t.Run("chromium", func(t *testing.T) { browse(t, hs.URL, fleet) })
}

// browse drives Chromium through the pages.
func browse(t *testing.T, base string, fleet *agentFleet) {
	exe := chromiumPath(t)
	shots := screenshotDir(t)
	hs := struct{ URL string }{base}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	do("start chromium")
	var dialogs atomic.Int32
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opening {
			if err != nil {
				return
			}
			dialogs.Add(1)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	rows := func() int {
		t.Helper()
		return evalJS[int](ctx, t, `document.querySelectorAll("#fleet tr.row").length`)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	// The fleet.
	do("open the fleet", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#fleet")))
	for sel, want := range map[string]string{"#count-all b": "6", "#count-converged b": "2", "#count-failing b": "2",
		"#count-refused b": "1", "#count-pending b": "1", "#count-stale b": "0"} {
		if got := text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if n := rows(); n != 6 {
		t.Errorf("%d rows, want 6", n)
	}
	state := evalJS[string](ctx, t, `document.querySelector('#fleet tr.row[data-node="offline-1"]').dataset.state`)
	badge := evalJS[string](ctx, t, `document.querySelector('#fleet tr.row[data-node="offline-1"] .badge').textContent`)
	colour := evalJS[string](ctx, t, `getComputedStyle(document.querySelector('#fleet tr.row[data-node="offline-1"] .badge')).backgroundColor`)
	if state != StateFailing || badge != "failing" || colour != "rgb(207, 34, 46)" {
		t.Errorf("offline-1 shown as state %q, badge %q in %s; want failing, in red", state, badge, colour)
	}
	names := evalJS[[]string](ctx, t, `Array.from(document.querySelectorAll("#fleet td.node a")).map(a => a.textContent)`)
	found := false
	for _, n := range names {
		found = found || n == hostileName
	}
	elements := evalJS[int](ctx, t, `document.querySelectorAll("script, img, iframe, object, embed").length`)
	if !found || elements != 0 {
		t.Errorf("the hostile name: shown as text %v (names %q); %d script or image elements on the page, want 0", found, names, elements)
	}
	shot("fleet")

	// The filters, through the form as a person uses it.
	do("filter by state", chromedp.SetValue(chromedp.CSS("#filter-state"), "failing"),
		chromedp.Click(chromedp.CSS("#filter-apply")), chromedp.WaitVisible(chromedp.CSS("#count-failing.on")))
	if n := rows(); n != 2 {
		t.Errorf("state=failing: %d rows, want 2", n)
	}
	do("filter by role", chromedp.SetValue(chromedp.CSS("#filter-role"), "offline"),
		chromedp.Click(chromedp.CSS("#filter-apply")), chromedp.WaitNotPresent(chromedp.CSS(`#fleet tr.row[data-role="online"]`)))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	shown := evalJS[[]string](ctx, t, `Array.from(document.querySelectorAll("#fleet tr.row")).map(r => r.dataset.node)`)
	if len(shown) != 1 || shown[0] != "offline-1" || !strings.Contains(loc, "role=offline") || !strings.Contains(loc, "state=failing") {
		t.Errorf("role=offline state=failing at %s: rows %q, want [offline-1]", loc, shown)
	}
	shot("fleet-filtered")

	// The failing node.
	do("open offline-1", chromedp.Navigate(hs.URL+"/node/offline-1"), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	if got := text("#node-state"); got != StateFailing {
		t.Errorf("offline-1's page: state %q", got)
	}
	if got := text("#failed pre"); got == "" {
		t.Errorf("offline-1's page shows no error for its failed resource")
	}
	bands := evalJS[int](ctx, t, `document.querySelectorAll("#timeline rect.band").length`)
	if bands < 2 {
		t.Errorf("offline-1's timeline has %d bands, want one per document (at least 2)", bands)
	}
	shot("node-failing")

	// The node that refused a commit, and a converged one.
	do("open vector-1", chromedp.Navigate(hs.URL+"/node/vector-1"), chromedp.WaitVisible(chromedp.CSS("#refused")))
	if got := text("#refused pre"); !strings.Contains(got, "vector-1.json") {
		t.Errorf("vector-1's refusal: %q, want the catalog's error", got)
	}
	shot("node-refused")
	do("open online-1", chromedp.Navigate(hs.URL+"/node/online-1"), chromedp.WaitVisible(chromedp.CSS("#timeline")))
	revs := evalJS[int](ctx, t, `document.querySelectorAll("#timeline line.rev").length`)
	if revs != 3 {
		t.Errorf("online-1's timeline marks %d applied revisions, want 3", revs)
	}
	shot("node-converged")

	// The hostile node's own page.
	do("open the hostile node", chromedp.Navigate(hs.URL+"/node/"+url.PathEscape(hostileName)), chromedp.WaitVisible(chromedp.CSS("#node-name")))
	if got := text("#node-name"); !strings.HasPrefix(got, hostileName) {
		t.Errorf("the hostile node's page is titled %q", got)
	}
	errText := evalJS[string](ctx, t, `document.querySelector("#failed pre").textContent`)
	elements = evalJS[int](ctx, t, `document.querySelectorAll("script, img, iframe, object, embed").length`)
	if errText != hostileError || elements != 0 {
		t.Errorf("the hostile error is shown as %q with %d elements made of it; want the text itself, none", errText, elements)
	}
	shot("node-hostile")

	// The revision the vector node refused.
	do("open c3", chromedp.Navigate(hs.URL+"/revision/"+fleet.c3), chromedp.WaitVisible(chromedp.CSS("#running")))
	for sel, want := range map[string]string{"#count-running b": "3", "#count-lagging b": "2", "#count-refused b": "1"} {
		if got := text(sel); got != want {
			t.Errorf("revision c3: %s = %q, want %q", sel, got, want)
		}
	}
	shot("revision")

	do("open /healthz", chromedp.Navigate(hs.URL+"/healthz"))
	if got := text("h1"); got != "OK" {
		t.Errorf("/healthz says %q", got)
	}
	if body := evalJS[string](ctx, t, `document.documentElement.outerHTML`); strings.Contains(body, "CANARY") {
		t.Errorf("the page in the browser shows the secret")
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: a document's markup ran", n)
	}
}

// evalJS evaluates js in the page (DevTools evaluation, which the page's
// Content-Security-Policy does not apply to) and returns its value.
func evalJS[T any](ctx context.Context, t *testing.T, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}
