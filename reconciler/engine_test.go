package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type spec = map[string]any

// statFiles returns each file's inode and mtime, to prove a run wrote
// nothing.
func statFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = fmt.Sprintf("%s ino=%d", fi.ModTime(), st.Ino)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEngine_ApplyTwice(t *testing.T) {
	h := newHarness(t)
	svc := ID("tservice:mariadb")
	cat := catalog(
		res("tfile:/a.cnf", spec{"content": "a"}, notifies(svc)),
		res("tfile:/b.cnf", spec{"content": "b"}, notifies(svc)),
		res("tfile:/c.cnf", spec{"content": "c"}, notifies(svc)),
		res(string(svc), nil),
	)
	e := h.engine(Config{})
	first := mustRun(t, e, cat, RunOptions{Root: h.root})
	want := map[ID]Outcome{"tfile:/a.cnf": Created, "tfile:/b.cnf": Created, "tfile:/c.cnf": Created, svc: Unchanged}
	if got := outcomes(first); !reflect.DeepEqual(got, want) {
		t.Fatalf("first run: %v, want %v", got, want)
	}
	if n := h.rec.count("refresh " + string(svc)); n != 1 {
		t.Fatalf("service refreshed %d times, want once for three changed files", n)
	}
	s := result(t, first, svc)
	if !s.Refreshed || len(s.RefreshedBy) != 3 {
		t.Fatalf("service result %+v: want refreshed by the three files", s)
	}
	if first.ExitCode() != 2 {
		t.Fatalf("exit code %d, want 2", first.ExitCode())
	}
	if got := sortedKeys(first.Next.Inventory); len(got) != 4 {
		t.Fatalf("inventory %v, want the four resources", got)
	}
	before := statFiles(t, h.root)
	writes := h.rec.count("write ")

	second := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: first.Next})
	for _, r := range second.Results {
		if r.Outcome != Unchanged || r.Refreshed || len(r.Changes) > 0 {
			t.Errorf("second run: %s %s refreshed=%v changes=%v", r.ID, r.Outcome, r.Refreshed, r.Changes)
		}
	}
	if second.ExitCode() != 0 {
		t.Fatalf("second run exit code %d, want 0", second.ExitCode())
	}
	if n := h.rec.count("write "); n != writes {
		t.Fatalf("second run wrote %d files", n-writes)
	}
	if n := h.rec.count("refresh "); n != 1 {
		t.Fatalf("second run refreshed: %d refreshes in all", n)
	}
	if after := statFiles(t, h.root); !reflect.DeepEqual(before, after) {
		t.Fatalf("files changed on the second run:\n%v\n%v", before, after)
	}
	// Nothing to remember changed: the state writer has nothing to write.
	if !reflect.DeepEqual(first.Next, second.Next) {
		t.Fatalf("memory changed on a quiet run:\n%+v\n%+v", first.Next, second.Next)
	}
}

func TestEngine_Noop(t *testing.T) {
	h := newHarness(t)
	svc := ID("tservice:mariadb")
	cat := catalog(
		res("tfile:/a.cnf", spec{"content": "a"}, notifies(svc)),
		res("tfile:/b.cnf", spec{"content": "b"}, notifies(svc)),
		res(string(svc), nil),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root, Noop: true})
	entries, err := os.ReadDir(h.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("noop wrote %d entries under the root", len(entries))
	}
	if ev := h.rec.all(); len(ev) != 0 {
		t.Fatalf("noop applied or refreshed: %v", ev)
	}
	if got := result(t, rep, "tfile:/a.cnf"); got.Outcome != Drifted || got.Action != ActionCreate || len(got.Changes) != 1 {
		t.Fatalf("noop file result %+v", got)
	}
	s := result(t, rep, svc)
	if !s.Refreshed || !reflect.DeepEqual(s.RefreshedBy, []ID{"tfile:/a.cnf", "tfile:/b.cnf"}) {
		t.Fatalf("noop does not say what would restart: %+v", s)
	}
	if rep.Next != nil {
		t.Fatal("noop left something to remember")
	}
	if rep.ExitCode() != 2 {
		t.Fatalf("exit code %d, want 2", rep.ExitCode())
	}
	text := rep.String()
	for _, want := range []string{"would create     tfile:/a.cnf", "would refresh    tservice:mariadb", "notified by tfile:/a.cnf, tfile:/b.cnf", "2 would change, 1 would refresh"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestEngine_FailureIsolation(t *testing.T) {
	h := newHarness(t)
	cat := catalog(
		res("tbad:fail", nil),
		res("tfile:/needs-fail", spec{"content": "x"}, requires("tbad:fail")),
		res("tservice:after", nil, requires("tfile:/needs-fail")),
		res("tfile:/unrelated", spec{"content": "y"}),
		res("tbad:applyfail", nil),
		res("tservice:unrelated", nil, requires("tfile:/unrelated")),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	cases := []struct {
		id      ID
		outcome Outcome
		text    string
	}{
		{"tbad:fail", Failed, "connection refused"},
		{"tfile:/needs-fail", Skipped, "dependency tbad:fail failed"},
		{"tservice:after", Skipped, "dependency tfile:/needs-fail was skipped because tbad:fail failed"},
		{"tfile:/unrelated", Created, ""},
		{"tbad:applyfail", Failed, "write refused"},
		{"tservice:unrelated", Unchanged, ""},
	}
	for _, c := range cases {
		r := result(t, rep, c.id)
		if r.Outcome != c.outcome || !strings.Contains(r.Error+r.Reason, c.text) {
			t.Errorf("%s: %s %q %q, want %s %q", c.id, r.Outcome, r.Error, r.Reason, c.outcome, c.text)
		}
	}
	if _, err := os.Stat(filepath.Join(h.root, "unrelated")); err != nil {
		t.Fatalf("the unrelated file was not written: %v", err)
	}
	if rep.ExitCode() != 6 {
		t.Fatalf("exit code %d, want 6", rep.ExitCode())
	}
}

func TestEngine_Containment(t *testing.T) {
	h := newHarness(t, panicky{})
	cat := catalog(
		res("tbad:panic", nil),
		res("tbad:hang", nil),
		res("tbad:noapply", nil),
		res("tpanicvalidate:x", nil),
		res("nosuchkind:x", nil),
		res("tfile:/after-unknown", spec{"content": "z"}, requires("nosuchkind:x")),
		res("tfile:/fine", spec{"content": "ok"}),
	)
	e := h.engine(Config{Timeout: 100 * time.Millisecond})
	rep := mustRun(t, e, cat, RunOptions{Root: h.root})
	cases := []struct {
		id      ID
		outcome Outcome
		text    string
	}{
		{"tbad:panic", Failed, "panic in plan: assignment to entry in nil map"},
		{"tbad:hang", Failed, "plan timed out after 100ms"},
		{"tbad:noapply", Failed, "no apply function"},
		{"tpanicvalidate:x", Failed, "panic in validate: validate bug"},
		{"nosuchkind:x", Failed, `unknown kind "nosuchkind"`},
		{"tfile:/after-unknown", Skipped, "dependency nosuchkind:x failed"},
		{"tfile:/fine", Created, ""},
	}
	for _, c := range cases {
		r := result(t, rep, c.id)
		if r.Outcome != c.outcome || !strings.Contains(r.Error+r.Reason, c.text) {
			t.Errorf("%s: %s %q %q, want %s %q", c.id, r.Outcome, r.Error, r.Reason, c.outcome, c.text)
		}
	}
	var re Result = result(t, rep, "tbad:hang")
	if !strings.Contains(re.Error, ErrTimeout.Error()) {
		t.Errorf("timeout error %q", re.Error)
	}
}

// TestEngine_PrepareBeside: beside runs, and has run when PrepareBeside
// returns, for a catalog that prepares (the same Prepared as Prepare's);
// for a catalog refused for its edges it never runs.
func TestEngine_PrepareBeside(t *testing.T) {
	h := newHarness(t)
	e := h.engine(Config{})
	good := catalog(res("tfile:/a", spec{"content": "a"}), res("tfile:/b", spec{"content": "b"}, requires("tfile:/a")))
	ran := false
	p, err := e.PrepareBeside(good, func() { ran = true })
	if err != nil || !ran {
		t.Fatalf("err %v, beside ran %v; want no error and beside run", err, ran)
	}
	want, err := e.Prepare(good)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Graph.Order, want.Graph.Order) || !reflect.DeepEqual(p.at, want.at) {
		t.Fatalf("PrepareBeside prepared %v, Prepare %v", p.Graph.Order, want.Graph.Order)
	}
	cycle := catalog(res("tbad:a", nil, requires("tbad:b")), res("tbad:b", nil, requires("tbad:a")))
	ran = false
	if _, err := e.PrepareBeside(cycle, func() { ran = true }); err == nil || ran {
		t.Fatalf("err %v, beside ran %v; want a CatalogError and beside not run", err, ran)
	}
}

func TestEngine_GraphErrorsNeverReachTheEngine(t *testing.T) {
	cases := []struct {
		name string
		cat  *Catalog
		want string
	}{
		{"cycle", catalog(
			res("tbad:a", nil, requires("tbad:b")),
			res("tbad:b", nil, requires("tbad:a")),
		), "dependency cycle: tbad:a -> tbad:b -> tbad:a"},
		{"dangling notify", catalog(
			res("tbad:a", nil, notifies("tservice:gone")),
		), "notify names tservice:gone, which is not in the catalog"},
		{"duplicate", &Catalog{Resources: []Resource{res("tbad:a", nil), res("tbad:a", nil)}},
			"declared more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			rep, err := h.engine(Config{}).Apply(context.Background(), c.cat, RunOptions{Root: h.root})
			var ce *CatalogError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want a CatalogError with %q", err, c.want)
			}
			var ee *EdgeError
			if !errors.As(err, &ee) {
				t.Fatalf("err %v does not unwrap to an EdgeError", err)
			}
			if rep != nil {
				t.Fatal("a report for a catalog that cannot run")
			}
			if ev := h.rec.all(); len(ev) != 0 {
				t.Fatalf("the engine touched resources: %v", ev)
			}
		})
	}
}

func TestEngine_PendingDestroy(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.root, "data"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	held := catalog(res("tfile:/data", spec{"content": "new", "destructive": true}))
	rep := mustRun(t, h.engine(Config{}), held, RunOptions{Root: h.root})
	r := result(t, rep, "tfile:/data")
	if r.Outcome != PendingDestroy || !strings.Contains(r.Reason, "allowDestroy") || len(r.Changes) != 1 {
		t.Fatalf("result %+v, want pending-destroy", r)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, "data")); string(b) != "precious" {
		t.Fatalf("held change ran: %q", b)
	}
	if rep.ExitCode() != 0 {
		t.Fatalf("exit code %d for a run that changed nothing", rep.ExitCode())
	}

	allowed := catalog(res("tfile:/data", spec{"content": "new", "destructive": true}, func(r *Resource) { r.AllowDestroy = true }))
	rep = mustRun(t, h.engine(Config{}), allowed, RunOptions{Root: h.root})
	if r := result(t, rep, "tfile:/data"); r.Outcome != Changed {
		t.Fatalf("allowed destroy: %+v", r)
	}
}

func TestEngine_Prune(t *testing.T) {
	h := newHarness(t)
	e := h.engine(Config{})
	full := catalog(
		res("tfile:/keep", spec{"content": "k"}),
		res("tfile:/gone", spec{"content": "g"}),
		res("tfile:/volume", spec{"content": "v", "destructive": true}),
		res("tservice:legacy", nil),
	)
	first := mustRun(t, e, full, RunOptions{Root: h.root})
	smaller := catalog(res("tfile:/keep", spec{"content": "k"}))

	noop := mustRun(t, e, smaller, RunOptions{Root: h.root, Prior: first.Next, Noop: true})
	if r := result(t, noop, "tfile:/gone"); r.Outcome != Drifted || !r.Pruned {
		t.Fatalf("noop prune %+v", r)
	}
	if _, err := os.Stat(filepath.Join(h.root, "gone")); err != nil {
		t.Fatalf("noop pruned: %v", err)
	}

	rep := mustRun(t, e, smaller, RunOptions{Root: h.root, Prior: first.Next})
	cases := []struct {
		id      ID
		outcome Outcome
		kept    bool
	}{
		{"tfile:/gone", Deleted, false},
		{"tfile:/volume", PendingDestroy, true},
		{"tservice:legacy", Skipped, false}, // its kind cannot prune: forgotten
	}
	for _, c := range cases {
		r := result(t, rep, c.id)
		if r.Outcome != c.outcome || !r.Pruned {
			t.Errorf("%s: %s pruned=%v (%s), want %s", c.id, r.Outcome, r.Pruned, r.Reason, c.outcome)
		}
		if _, kept := rep.Next.Inventory[c.id]; kept != c.kept {
			t.Errorf("%s in inventory: %v, want %v", c.id, kept, c.kept)
		}
	}
	if _, err := os.Stat(filepath.Join(h.root, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pruned file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.root, "volume")); err != nil {
		t.Fatalf("destructive prune ran: %v", err)
	}
	if _, ok := rep.Next.Observed["tfile:/gone"]; ok {
		t.Fatal("observed state of a pruned resource kept")
	}

	// A subset run prunes nothing.
	sub := mustRun(t, e, smaller, RunOptions{Root: h.root, Prior: rep.Next, Only: []ID{"tfile:/keep"}})
	for _, r := range sub.Results {
		if r.Pruned {
			t.Fatalf("subset run pruned %s", r.ID)
		}
	}
}

func TestEngine_Detect(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.root, "motd"), []byte("hand edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat := catalog(res("tfile:/motd", spec{"content": "managed"}, func(r *Resource) { r.Mode = ModeDetect }))
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	r := result(t, rep, "tfile:/motd")
	if r.Outcome != Drifted || len(r.Changes) != 1 {
		t.Fatalf("detect: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, "motd")); string(b) != "hand edited" {
		t.Fatalf("detect mode applied: %q", b)
	}
	if !strings.Contains(rep.String(), "drifted          tfile:/motd") {
		t.Fatalf("report:\n%s", rep)
	}
}

func TestEngine_Corrective(t *testing.T) {
	h := newHarness(t)
	e := h.engine(Config{})
	cat := catalog(res("tfile:/chrony.conf", spec{"content": "pool a"}))
	first := mustRun(t, e, cat, RunOptions{Root: h.root})
	if r := result(t, first, "tfile:/chrony.conf"); r.Corrective {
		t.Fatal("a creation marked corrective")
	}
	// Someone edits the file by hand: the next run corrects drift.
	if err := os.WriteFile(filepath.Join(h.root, "chrony.conf"), []byte("pool evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: first.Next})
	if r := result(t, second, "tfile:/chrony.conf"); r.Outcome != Changed || !r.Corrective {
		t.Fatalf("hand edit: %+v, want a corrective change", r)
	}
	if !strings.Contains(second.String(), "(drift corrected)") {
		t.Fatalf("report:\n%s", second)
	}
	// A new desired content is a change, not a correction.
	changed := catalog(res("tfile:/chrony.conf", spec{"content": "pool b"}))
	third := mustRun(t, e, changed, RunOptions{Root: h.root, Prior: second.Next})
	if r := result(t, third, "tfile:/chrony.conf"); r.Outcome != Changed || r.Corrective {
		t.Fatalf("spec change: %+v, want a plain change", r)
	}
}

func TestEngine_Only(t *testing.T) {
	h := newHarness(t)
	svc := ID("tservice:mariadb")
	cat := catalog(
		res("tfile:/a.cnf", spec{"content": "a"}, notifies(svc)),
		res("tfile:/b.cnf", spec{"content": "b"}),
		res(string(svc), nil),
	)
	e := h.engine(Config{})
	first := mustRun(t, e, cat, RunOptions{Root: h.root})
	if err := os.WriteFile(filepath.Join(h.root, "a.cnf"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: first.Next, Only: []ID{"tfile:/a.cnf"}})
	got := outcomes(rep)
	want := map[ID]Outcome{"tfile:/a.cnf": Changed, svc: Unchanged}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subset run: %v, want %v", got, want)
	}
	if !result(t, rep, svc).Refreshed {
		t.Fatal("the dependent was not refreshed")
	}
	if _, ok := rep.Next.Inventory["tfile:/b.cnf"]; !ok {
		t.Fatal("a subset run dropped a resource it did not cover from the inventory")
	}
	if _, err := e.Apply(context.Background(), cat, RunOptions{Only: []ID{"tfile:/nope"}}); err == nil {
		t.Fatal("an unknown ID in Only was accepted")
	}
}

func TestEngine_Parallel(t *testing.T) {
	const par = 3
	b := &barrierKind{size: par}
	h := newHarness(t, b)
	var rs []Resource
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		rs = append(rs, res("tbarrier:"+n, nil))
	}
	e := h.engine(Config{Parallel: par, Timeout: 5 * time.Second})
	rep := mustRun(t, e, catalog(rs...), RunOptions{})
	for _, r := range rep.Results {
		if r.Outcome != Unchanged {
			t.Fatalf("%s: %s %s (independent resources did not run %d at once)", r.ID, r.Outcome, r.Error, par)
		}
	}
	if b.max != par {
		t.Fatalf("at most %d ran at once, want exactly the bound %d", b.max, par)
	}
}

func TestEngine_MissingSecret(t *testing.T) {
	h := newHarness(t)
	cat := catalog(
		res("tfile:/db.cnf", spec{"secret": spec{"secret": "mariadb/fs_user"}}),
		res("tfile:/api.key", spec{"secret": spec{"secret": "weaviate/apikey"}}),
		res("tfile:/plain", spec{"content": "p"}),
	)
	secrets := mapSecrets{"weaviate/apikey": "s3cr3t-value"}
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root, Secrets: secrets})
	r := result(t, rep, "tfile:/db.cnf")
	if r.Outcome != Failed || !strings.Contains(r.Error, "mariadb/fs_user") || !strings.Contains(r.Error, ErrSecretNotFound.Error()) {
		t.Fatalf("missing secret: %+v", r)
	}
	for _, id := range []ID{"tfile:/api.key", "tfile:/plain"} {
		if o := result(t, rep, id).Outcome; o != Created {
			t.Errorf("%s: %s, want created", id, o)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, "api.key")); string(b) != "s3cr3t-value" {
		t.Fatalf("secret file content %q", b)
	}
	if strings.Contains(rep.String(), "s3cr3t") {
		t.Fatalf("report shows a secret:\n%s", rep)
	}
}

func TestEngine_SkipUnderRoot(t *testing.T) {
	h := newHarness(t)
	cat := catalog(
		res("tbad:skip-pkg", nil),
		res("tfile:/conf", spec{"content": "c"}, requires("tbad:skip-pkg")),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	if r := result(t, rep, "tbad:skip-pkg"); r.Outcome != Skipped || r.Reason != "cannot honour --root" {
		t.Fatalf("skip: %+v", r)
	}
	if r := result(t, rep, "tfile:/conf"); r.Outcome != Created {
		t.Fatalf("a dependent of a kind that cannot run here: %+v, want created", r)
	}
	if rep.ExitCode() != 2 {
		t.Fatalf("exit code %d", rep.ExitCode())
	}
}

func TestEngine_NoopDependentCannotBeObserved(t *testing.T) {
	h := newHarness(t)
	cat := catalog(
		res("tfile:/pkg", spec{"content": "installed"}),
		res("tbad:fail-needs-pkg", nil, requires("tfile:/pkg")),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root, Noop: true})
	r := result(t, rep, "tbad:fail-needs-pkg")
	if r.Outcome != Skipped || !strings.Contains(r.Reason, "cannot be observed before tfile:/pkg is applied") {
		t.Fatalf("noop dependent: %+v", r)
	}
	if rep.ExitCode() != 2 {
		t.Fatalf("exit code %d, want 2", rep.ExitCode())
	}
}

func TestEngine_Stop(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	stopper := &stopKind{stop: stop}
	h.reg.Add(stopper)
	cat := catalog(
		res("tstop:first", nil),
		res("tfile:/later", spec{"content": "l"}, requires("tstop:first")),
	)
	rep := mustRun(t, h.engine(Config{Parallel: 1}), cat, RunOptions{Root: h.root, Stop: stop})
	if r := result(t, rep, "tstop:first"); r.Outcome != Unchanged {
		t.Fatalf("the resource in hand did not finish: %+v", r)
	}
	if r := result(t, rep, "tfile:/later"); r.Outcome != Skipped || !strings.Contains(r.Reason, "stopped on request") {
		t.Fatalf("later resource: %+v", r)
	}
	if rep.Stopped == "" {
		t.Fatal("report does not say the run stopped")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := h.engine(Config{}).Apply(ctx, cat, RunOptions{Root: h.root})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Stopped, "cancelled") || outcomes(rep)["tstop:first"] != Skipped {
		t.Fatalf("cancelled run: %q %v", rep.Stopped, outcomes(rep))
	}
}

// blockKind waits in Plan until its context ends, after saying it started.
type blockKind struct{ started chan struct{} }

func (k *blockKind) Kind() string               { return "tblock" }
func (k *blockKind) Validate(r *Resource) error { return nil }
func (k *blockKind) Plan(ctx context.Context, _ *Env, r *Resource) (*Plan, error) {
	close(k.started)
	<-ctx.Done()
	return nil, fmt.Errorf("observe %s: %w", r.ID, ctx.Err())
}

func TestEngine_CancelInHand(t *testing.T) {
	b := &blockKind{started: make(chan struct{})}
	h := newHarness(t, b)
	cat := catalog(res("tblock:x", nil), res("tfile:/after", spec{"content": "a"}, requires("tblock:x")))
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { <-b.started; cancel(errors.New("a newer commit arrived")) }()
	rep, err := h.engine(Config{}).Apply(ctx, cat, RunOptions{Root: h.root})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, rep, "tblock:x"); r.Outcome != Failed || !strings.Contains(r.Error, "interrupted, the run was cancelled (a newer commit arrived)") {
		t.Fatalf("resource in hand: %+v", r)
	}
	if r := result(t, rep, "tfile:/after"); r.Outcome != Skipped {
		t.Fatalf("resource after: %+v", r)
	}
	if !strings.Contains(rep.Stopped, "a newer commit arrived") {
		t.Fatalf("stopped %q", rep.Stopped)
	}
}

// stopKind closes its channel when planned: the run is asked to stop while
// the resource is in hand.
type stopKind struct{ stop chan struct{} }

func (k *stopKind) Kind() string               { return "tstop" }
func (k *stopKind) Validate(r *Resource) error { return nil }
func (k *stopKind) Plan(context.Context, *Env, *Resource) (*Plan, error) {
	close(k.stop)
	return &Plan{}, nil
}

func TestEngine_RefreshFailure(t *testing.T) {
	h := newHarness(t)
	cat := catalog(
		res("tfile:/unit", spec{"content": "u"}, notifies("tservice:broken")),
		res("tservice:broken", nil),
		res("tfile:/needs-service", spec{"content": "n"}, requires("tservice:broken")),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	if r := result(t, rep, "tservice:broken"); r.Outcome != Failed || !strings.Contains(r.Error, "refresh (notified by tfile:/unit): restart failed") {
		t.Fatalf("refresh failure: %+v", r)
	}
	if r := result(t, rep, "tfile:/needs-service"); r.Outcome != Skipped {
		t.Fatalf("dependent of a failed refresh: %+v", r)
	}
}

func TestEngine_OwedRefreshIsKept(t *testing.T) {
	h := newHarness(t)
	e := h.engine(Config{})
	svc := ID("tservice:mariadb")
	cat := catalog(
		res("tfile:/server.cnf", spec{"content": "a"}, notifies(svc)),
		res(string(svc), nil),
	)
	h.svc.fail.Store(svc, true)
	first := mustRun(t, e, cat, RunOptions{Root: h.root})
	if r := result(t, first, svc); r.Outcome != Failed {
		t.Fatalf("failing restart: %+v", r)
	}
	if got := first.Next.Refresh[svc]; !reflect.DeepEqual(got, []ID{"tfile:/server.cnf"}) {
		t.Fatalf("owed refresh %v, want the config file", got)
	}

	// The file is quiet now, but the restart is still owed: it runs.
	h.svc.fail.Delete(svc)
	noop := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: first.Next, Noop: true})
	if r := result(t, noop, svc); !r.Refreshed || noop.ExitCode() != 2 {
		t.Fatalf("noop does not show the owed restart: %+v", r)
	}
	second := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: first.Next})
	if r := result(t, second, svc); r.Outcome != Unchanged || !r.Refreshed || !reflect.DeepEqual(r.RefreshedBy, []ID{"tfile:/server.cnf"}) {
		t.Fatalf("owed restart: %+v", r)
	}
	if len(second.Next.Refresh) != 0 {
		t.Fatalf("refresh still owed after it ran: %v", second.Next.Refresh)
	}
	third := mustRun(t, e, cat, RunOptions{Root: h.root, Prior: second.Next})
	if r := result(t, third, svc); r.Refreshed {
		t.Fatal("refreshed again on a quiet run")
	}

	// A refresh that did not run because a dependency failed is owed too.
	h2 := newHarness(t)
	cat2 := catalog(
		res("tfile:/server.cnf", spec{"content": "a"}, notifies(svc)),
		res("tbad:fail", nil),
		res(string(svc), nil, requires("tbad:fail")),
	)
	rep := mustRun(t, h2.engine(Config{}), cat2, RunOptions{Root: h2.root})
	if r := result(t, rep, svc); r.Outcome != Skipped || len(rep.Next.Refresh[svc]) != 1 {
		t.Fatalf("skipped service: %+v, owed %v", r, rep.Next.Refresh)
	}
}

// closer counts Close calls.
type closer struct{ n *int }

func (c closer) Close() error { *c.n++; return nil }

func TestCache_Close(t *testing.T) {
	c := NewCache()
	var n int
	if _, err := c.Once("db", func() (any, error) { return closer{&n}, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Once("old", func() (any, error) { return closer{&n}, nil }); err != nil {
		t.Fatal(err)
	}
	c.Forget("old")
	if _, err := c.Once("plain", func() (any, error) { return 42, nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("closed %d values, want 2", n)
	}
}

func BenchmarkEngine_QuietRun(b *testing.B) {
	h := newHarness(b)
	var rs []Resource
	for i := 0; i < 1000; i++ {
		rs = append(rs, res("tfile:/f"+strconv.Itoa(i), spec{"content": "x"}))
	}
	cat := catalog(rs...)
	e := h.engine(Config{})
	p, err := e.Prepare(cat)
	if err != nil {
		b.Fatal(err)
	}
	first, err := e.Run(context.Background(), p, RunOptions{Root: h.root})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := e.Run(context.Background(), p, RunOptions{Root: h.root, Prior: first.Next})
		if err != nil || rep.ExitCode() != 0 {
			b.Fatal(err, rep.ExitCode())
		}
	}
}

// TestObservedState_Compact: the memory keeps long observed fields as
// digests, and the hash of the whole state unchanged.
func TestObservedState_Compact(t *testing.T) {
	long := strings.Repeat("s", maxRememberedField+1)
	o := NewObservedState(map[string]string{"schema": long, "ensure": "present"})
	c := o.compact()
	if c.Hash != o.Hash || c.Fields["ensure"] != "present" || !strings.HasPrefix(c.Fields["schema"], "sha256:") || len(c.Fields["schema"]) != 71 {
		t.Fatalf("compact: %+v", c)
	}
	if o.Fields["schema"] != long {
		t.Fatal("compact changed the original")
	}
	short := NewObservedState(map[string]string{"ensure": "present"})
	if c := short.compact(); c.Fields["ensure"] != "present" {
		t.Fatalf("compact of a short state: %+v", c)
	}
}

// panicTimeoutKind panics in Timeout, which the engine calls outside the
// contained steps.
type panicTimeoutKind struct{}

func (panicTimeoutKind) Kind() string             { return "tpanictimeout" }
func (panicTimeoutKind) Validate(*Resource) error { return nil }
func (panicTimeoutKind) Plan(context.Context, *Env, *Resource) (*Plan, error) {
	return &Plan{}, nil
}
func (panicTimeoutKind) Timeout(*Resource) time.Duration { panic("timeout exploded") }

// TestRun_EnginePanicFailsTheResource: a panic in the engine's own
// handling of a resource fails that resource (and skips its dependents);
// it does not take the process down with exit code 2.
func TestRun_EnginePanicFailsTheResource(t *testing.T) {
	h := newHarness(t, panicTimeoutKind{})
	cat := catalog(
		res("tpanictimeout:x", nil),
		res("tfile:/after.cnf", spec{"content": "a"}, func(r *Resource) { r.Require = []ID{"tpanictimeout:x"} }),
		res("tfile:/other.cnf", spec{"content": "o"}),
	)
	rep := mustRun(t, h.engine(Config{}), cat, RunOptions{Root: h.root})
	got := map[ID]Outcome{}
	for _, r := range rep.Results {
		got[r.ID] = r.Outcome
		if r.ID == "tpanictimeout:x" && !strings.Contains(r.Error, "fsgit panicked handling it: timeout exploded") {
			t.Errorf("error %q", r.Error)
		}
	}
	if got["tpanictimeout:x"] != Failed || got["tfile:/after.cnf"] != Skipped || got["tfile:/other.cnf"] != Created {
		t.Fatalf("outcomes %v", got)
	}
}

// failKind fails the way kinds wrap their errors: with its resource's ID.
type failKind struct{}

func (failKind) Kind() string             { return "tfail" }
func (failKind) Validate(*Resource) error { return nil }
func (failKind) Plan(_ context.Context, _ *Env, r *Resource) (*Plan, error) {
	return nil, fmt.Errorf("plan %s: check guards of %s: %w", r.ID, r.ID, errors.New("disk full"))
}

// TestEngine_ErrorsDoNotRepeatTheID: the report prints a failed
// resource's ID next to its error, so the error does not say it again.
func TestEngine_ErrorsDoNotRepeatTheID(t *testing.T) {
	h := newHarness(t, failKind{})
	rep := mustRun(t, h.engine(Config{}), catalog(res("tfail:x", nil)), RunOptions{Root: h.root})
	r := result(t, rep, "tfail:x")
	if r.Outcome != Failed || r.Error != "plan: check guards: disk full" {
		t.Fatalf("result %+v, want failed with %q", r, "plan: check guards: disk full")
	}
	var b strings.Builder
	if err := rep.WriteText(&b, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "tfail:x"); n != 1 {
		t.Fatalf("the text report names tfail:x %d times, want once:\n%s", n, b.String())
	}
}

func TestWithoutID(t *testing.T) {
	for _, c := range []struct{ msg, want string }{
		{"plan file:/etc/x: permission denied", "plan: permission denied"},
		{"apply: apply file:/etc/x: no space", "apply: no space"},
		{"file:/etc/x: broken", "broken"},
		{"requires file:/etc/x.d which failed", "requires file:/etc/x.d which failed"},
		{"plan file:/etc/xy: other", "plan file:/etc/xy: other"},
		{"", ""},
	} {
		if got := withoutID("file:/etc/x", c.msg); got != c.want {
			t.Errorf("withoutID(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
}
