package service

// Why most of these tests do not talk to a real systemd: the machines
// where fsgit's tests run (developers' containers and CI) have no systemd
// as PID 1 and no D-Bus system bus, and no image with one can be fetched.
// What runs for real here is the path such a host takes: Plan and Refresh
// skip with the reason (TestKind_Plan_noSystemd). The mapping from
// systemd's unit properties to changes, and the calls an apply and a
// refresh make, are shown against fakeSystemd below: a stand-in for
// systemd's D-Bus manager that keeps unit states the way systemd reports
// them (LoadState, ActiveState, UnitFileState, NeedDaemonReload) and
// records every call. On a host with systemd, TestKind_live runs the real
// thing against a throw-away unit; on one without, but with Docker,
// TestKind_liveSystemdContainer runs TestKind_live in a container that
// boots systemd (fsgit.local/systemd:bookworm, scripts/build-images.sh).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/fsgit/fsgit/internal/kindtest"
	"github.com/fsgit/fsgit/reconciler"
)

// resource returns a service resource with spec, filled with the defaults
// the schema gives it.
func resource(t testing.TB, name string, spec map[string]any) *reconciler.Resource {
	t.Helper()
	return kindtest.Resource(t, KindName, name, spec, map[string]any{"ensure": ensureRunning, "enable": true, "refresh": refreshRestart})
}

func newEnv() *reconciler.Env { return &reconciler.Env{Cache: reconciler.NewCache()} }

func TestKind_Validate(t *testing.T) {
	cases := []struct {
		name, id string
		spec     map[string]any
		unit     string
		ok       bool
	}{
		{"defaults", "mariadb", map[string]any{}, "mariadb.service", true},
		{"template instance", "getty@tty1", map[string]any{"ensure": "stopped", "enable": false}, "getty@tty1.service", true},
		{"a timer keeps its suffix", "x", map[string]any{"name": "fstrim.timer"}, "fstrim.timer", true},
		{"refresh reload", "nginx", map[string]any{"refresh": "reload"}, "nginx.service", true},
		// A bad ensure, refresh or name is the schema's to refuse
		// (internal/desired TestVet_KindConstraints).
		{"name too long", "x", map[string]any{"name": strings.Repeat("a", 241)}, "", false},
		{"unknown field", "nginx", map[string]any{"hasstatus": true}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := resource(t, c.id, c.spec)
			s, err := New().Decode(r)
			if (err == nil) != c.ok {
				t.Fatalf("decode: err = %v, want ok = %v", err, c.ok)
			}
			if err := New().Validate(r); (err == nil) != c.ok {
				t.Fatalf("Validate: err = %v, want ok = %v", err, c.ok)
			}
			if c.ok && s.unit != c.unit {
				t.Fatalf("unit = %q, want %q", s.unit, c.unit)
			}
		})
	}
}

// TestKind_Plan_noSystemd is the real behaviour on a host without systemd
// as PID 1 (this one, a container): skipped, saying why.
func TestKind_Plan_noSystemd(t *testing.T) {
	if systemdBooted() == nil {
		t.Skip("systemd runs on this host: the no-systemd path cannot be shown here (see TestKind_live)")
	}
	k := New()
	env := newEnv()
	r := resource(t, "fsgt-test", map[string]any{})
	_, err := k.Plan(context.Background(), env, r)
	if !reconciler.IsSkip(err) || !strings.Contains(err.Error(), "systemd is not running on this host") {
		t.Fatalf("Plan = %v, want a skip saying systemd is not running", err)
	}
	if err := k.Refresh(context.Background(), env, r, false); !reconciler.IsSkip(err) {
		t.Fatalf("Refresh = %v, want a skip", err)
	}
}

func TestKind_Plan_underRootIsSkipped(t *testing.T) {
	env := newEnv()
	env.Root = t.TempDir()
	k, _ := fakeKind(t)
	_, err := k.Plan(context.Background(), env, resource(t, "nginx", map[string]any{}))
	if !reconciler.IsSkip(err) || !strings.Contains(err.Error(), "--root") {
		t.Fatalf("Plan under a root = %v, want a skip naming --root", err)
	}
}

func TestKind_Plan_dialFailureIsAnError(t *testing.T) {
	k := reconciler.NewTyped(&Kind{
		booted: func() error { return nil },
		dial:   func(context.Context) (manager, error) { return nil, errors.New("no bus") },
	})
	_, err := k.Plan(context.Background(), newEnv(), resource(t, "nginx", map[string]any{}))
	if err == nil || reconciler.IsSkip(err) {
		t.Fatalf("Plan with systemd booted but unreachable = %v, want a failure, not a skip", err)
	}
}

// TestKind_connectionOutlivesTheResource: the run's D-Bus connection is
// shared by every service resource of the run, so it must not live and die
// with the context of the resource that happened to dial it. go-systemd
// closes a connection when its dial context is done; with the resource's
// context, every later service of the run failed with "dbus: connection
// closed by user" (seen on the fleet's first converge).
func TestKind_connectionOutlivesTheResource(t *testing.T) {
	f := &fakeSystemd{units: map[string]*unitState{}, onDisk: map[string]bool{}, changed: map[string]bool{}}
	var dialled context.Context
	k := reconciler.NewTyped(&Kind{
		booted: func() error { return nil },
		dial: func(ctx context.Context) (manager, error) {
			dialled = ctx
			return f, nil
		},
	})
	env := newEnv()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := k.Plan(ctx, env, resource(t, "nginx", map[string]any{})); err != nil {
		t.Fatal(err)
	}
	cancel() // the first resource is done
	if dialled == nil || dialled.Err() != nil {
		t.Fatalf("the connection's context ended with the resource that dialled it (%v): later resources of the run lose systemd", dialled.Err())
	}
	if _, err := k.Plan(context.Background(), env, resource(t, "ssh", map[string]any{})); err != nil {
		t.Fatalf("a later resource of the same run: %v", err)
	}
}

func TestStateOf(t *testing.T) {
	cases := []struct {
		name             string
		props            map[string]any
		running, enabled bool
		settable         bool
		needReload       bool
	}{
		{"active enabled", map[string]any{"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled", "NeedDaemonReload": false}, true, true, true, false},
		{"activating runtime-enabled", map[string]any{"LoadState": "loaded", "ActiveState": "activating", "UnitFileState": "enabled-runtime"}, true, true, true, false},
		{"failed disabled", map[string]any{"LoadState": "loaded", "ActiveState": "failed", "UnitFileState": "disabled"}, false, false, true, false},
		{"deactivating", map[string]any{"LoadState": "loaded", "ActiveState": "deactivating", "UnitFileState": "enabled"}, false, true, true, false},
		{"static", map[string]any{"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "static"}, false, false, false, false},
		{"generated", map[string]any{"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "generated"}, true, false, false, false},
		{"file changed", map[string]any{"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled", "NeedDaemonReload": true}, true, true, true, true},
		{"not found", map[string]any{"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}, false, false, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := stateOf(c.props)
			on, settable := u.enabled()
			if u.running() != c.running || on != c.enabled || settable != c.settable || u.needReload != c.needReload {
				t.Fatalf("state %+v: running %v enabled %v settable %v", u, u.running(), on, settable)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name    string
		spec    map[string]any
		state   unitState
		fields  []string
		class   reconciler.Class
		actions actions
		err     bool
	}{
		{"converged", map[string]any{}, unitState{"loaded", "active", "enabled", false}, nil, reconciler.Safe, actions{}, false},
		{"stopped and disabled: start and enable", map[string]any{}, unitState{"loaded", "inactive", "disabled", false}, []string{"enable", "ensure"}, reconciler.Safe, actions{enable: true, start: true}, false},
		{"failed is started", map[string]any{}, unitState{"loaded", "failed", "enabled", false}, []string{"ensure"}, reconciler.Safe, actions{start: true}, false},
		{"stopping is disruptive", map[string]any{"ensure": "stopped", "enable": false}, unitState{"loaded", "active", "enabled", false}, []string{"enable", "ensure"}, reconciler.Disruptive, actions{disable: true, stop: true}, false},
		{"unit file changed", map[string]any{}, unitState{"loaded", "active", "enabled", true}, []string{"unitFile"}, reconciler.Safe, actions{daemonReload: true}, false},
		{"new unit file", map[string]any{}, unitState{"not-found", "inactive", "", false}, []string{"unitFile", "enable", "ensure"}, reconciler.Safe, actions{daemonReload: true, enable: true, start: true}, false},
		{"absent and unwanted", map[string]any{"ensure": "stopped", "enable": false}, unitState{"not-found", "inactive", "", false}, nil, reconciler.Safe, actions{}, false},
		{"static cannot be enabled: no change", map[string]any{}, unitState{"loaded", "active", "static", false}, nil, reconciler.Safe, actions{}, false},
		{"masked but wanted", map[string]any{}, unitState{"masked", "inactive", "masked", false}, nil, reconciler.Safe, actions{}, true},
		{"masked and unwanted", map[string]any{"ensure": "stopped", "enable": false}, unitState{"masked", "inactive", "masked", false}, nil, reconciler.Safe, actions{}, false},
		{"bad unit file", map[string]any{}, unitState{"bad-setting", "inactive", "enabled", false}, nil, reconciler.Safe, actions{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New().Decode(resource(t, "x", c.spec))
			if err != nil {
				t.Fatal(err)
			}
			changes, a, err := diff(s, c.state)
			if (err != nil) != c.err {
				t.Fatalf("diff: err = %v, want error %v", err, c.err)
			}
			p := reconciler.Plan{Changes: changes}
			var fields []string
			for _, ch := range changes {
				fields = append(fields, ch.Field)
			}
			if !slices.Equal(fields, c.fields) || p.MaxClass() != c.class || a != c.actions {
				t.Fatalf("diff = %v class %s actions %+v, want %v class %s actions %+v", fields, p.MaxClass(), a, c.fields, c.class, c.actions)
			}
		})
	}
}

// fakeSystemd stands in for systemd's D-Bus manager, which cannot run
// where the tests run (see the top of this file). Its units change state
// the way systemd's would for the calls the kind makes, and it records the
// calls.
type fakeSystemd struct {
	mu    sync.Mutex
	units map[string]*unitState
	// onDisk marks units whose file is on disk but not loaded yet.
	onDisk  map[string]bool
	calls   []string
	result  string // job result; "" means done
	closed  bool
	changed map[string]bool // unit files changed on disk since loaded
}

func fakeKind(t testing.TB) (*reconciler.Typed[spec], *fakeSystemd) {
	t.Helper()
	f := &fakeSystemd{units: map[string]*unitState{}, onDisk: map[string]bool{}, changed: map[string]bool{}}
	return reconciler.NewTyped(&Kind{
		booted:  func() error { return nil },
		dial:    func(context.Context) (manager, error) { return f, nil },
		dropIns: func(string) []string { return nil },
	}), f
}

func (f *fakeSystemd) record(call string) {
	f.calls = append(f.calls, call)
}

func (f *fakeSystemd) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeSystemd) unit(name string) *unitState {
	u, ok := f.units[name]
	if !ok {
		u = &unitState{load: "not-found", active: "inactive"}
		f.units[name] = u
	}
	return u
}

func (f *fakeSystemd) GetUnitPropertiesContext(_ context.Context, unit string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.unit(unit)
	return map[string]any{
		"Id": unit, "LoadState": u.load, "ActiveState": u.active, "SubState": "whatever",
		"UnitFileState": u.fileState, "NeedDaemonReload": f.changed[unit],
	}, nil
}

func (f *fakeSystemd) job(call, unit string, ch chan<- string, apply func(*unitState)) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(call + " " + unit)
	u := f.unit(unit)
	if u.load != "loaded" {
		return 0, fmt.Errorf("Unit %s not found.", unit)
	}
	res := f.result
	if res == "" {
		res = "done"
		apply(u)
	}
	ch <- res
	return 1, nil
}

func (f *fakeSystemd) StartUnitContext(_ context.Context, unit, _ string, ch chan<- string) (int, error) {
	return f.job("start", unit, ch, func(u *unitState) { u.active = "active" })
}

func (f *fakeSystemd) StopUnitContext(_ context.Context, unit, _ string, ch chan<- string) (int, error) {
	return f.job("stop", unit, ch, func(u *unitState) { u.active = "inactive" })
}

func (f *fakeSystemd) RestartUnitContext(_ context.Context, unit, _ string, ch chan<- string) (int, error) {
	return f.job("restart", unit, ch, func(u *unitState) { u.active = "active" })
}

func (f *fakeSystemd) TryRestartUnitContext(_ context.Context, unit, _ string, ch chan<- string) (int, error) {
	return f.job("try-restart", unit, ch, func(*unitState) {})
}

func (f *fakeSystemd) ReloadUnitContext(_ context.Context, unit, _ string, ch chan<- string) (int, error) {
	return f.job("reload", unit, ch, func(*unitState) {})
}

func (f *fakeSystemd) EnableUnitFilesContext(_ context.Context, files []string, _, _ bool) (bool, []dbus.EnableUnitFileChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("enable " + strings.Join(files, ","))
	for _, n := range files {
		f.unit(n).fileState = "enabled"
	}
	return true, nil, nil
}

func (f *fakeSystemd) DisableUnitFilesContext(_ context.Context, files []string, _ bool) ([]dbus.DisableUnitFileChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("disable " + strings.Join(files, ","))
	for _, n := range files {
		f.unit(n).fileState = "disabled"
	}
	return nil, nil
}

func (f *fakeSystemd) ReloadContext(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("daemon-reload")
	for n := range f.onDisk {
		u := f.unit(n)
		if u.load == "not-found" {
			u.load, u.fileState = "loaded", "disabled"
		}
	}
	clear(f.changed)
	return nil
}

func (f *fakeSystemd) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func mustPlan(t testing.TB, k reconciler.Kind, env *reconciler.Env, r *reconciler.Resource) *reconciler.Plan {
	t.Helper()
	p, err := k.Plan(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKind_ApplyTwice_fake: a new unit file is loaded, enabled and started
// in one apply, in that order; the second run calls nothing that changes
// anything; a refresh in the run that started the unit does not restart
// it, one in a later run does (after a daemon-reload when the unit file
// changed).
func TestKind_ApplyTwice_fake(t *testing.T) {
	k, f := fakeKind(t)
	f.onDisk["fsgt.service"] = true
	r := resource(t, "fsgt", map[string]any{"ensure": "running", "enable": true})
	ctx := context.Background()

	env := newEnv()
	p := mustPlan(t, k, env, r)
	if p.Action != reconciler.ActionCreate || len(p.Changes) != 3 {
		t.Fatalf("first plan = %s %+v, want create with unitFile, enable, ensure", p.Action, p.Changes)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(ctx, env, r, true); !reconciler.IsSkip(err) {
		t.Fatalf("Refresh right after the start = %v, want a skip", err)
	}
	if got, want := f.takeCalls(), []string{"daemon-reload", "enable fsgt.service", "start fsgt.service"}; !slices.Equal(got, want) {
		t.Fatalf("first run called %q, want %q (no restart right after the start)", got, want)
	}
	if err := env.Cache.Close(); err != nil || !f.closed {
		t.Fatalf("closing the run's cache: err %v, connection closed %v", err, f.closed)
	}

	env = newEnv()
	p = mustPlan(t, k, env, r)
	if p.HasChanges() || p.Apply != nil {
		t.Fatalf("second plan has changes: %+v", p.Changes)
	}
	if got := f.takeCalls(); len(got) != 0 {
		t.Fatalf("second run called %q, want nothing", got)
	}
	if p.Observed["active"] != "active" || p.Observed["unitFileState"] != "enabled" {
		t.Fatalf("observed %v", p.Observed)
	}

	// A later run: the unit file changed and a notify edge fires.
	f.changed["fsgt.service"] = true
	env = newEnv()
	p = mustPlan(t, k, env, r)
	if len(p.Changes) != 1 || p.Changes[0].Field != "unitFile" {
		t.Fatalf("plan after the unit file changed: %+v, want the unitFile change", p.Changes)
	}
	if err := k.Refresh(ctx, env, r, true); err != nil {
		t.Fatal(err)
	}
	if got, want := f.takeCalls(), []string{"daemon-reload", "restart fsgt.service"}; !slices.Equal(got, want) {
		t.Fatalf("refresh called %q, want %q", got, want)
	}
}

func TestKind_Refresh_modes(t *testing.T) {
	cases := []struct {
		name string
		spec map[string]any
		want []string
		skip bool
	}{
		{"restart", map[string]any{}, []string{"restart fsgt.service"}, false},
		{"reload", map[string]any{"refresh": "reload"}, []string{"reload fsgt.service"}, false},
		{"try-restart", map[string]any{"refresh": "try-restart"}, []string{"try-restart fsgt.service"}, false},
		{"stopped is left stopped", map[string]any{"ensure": "stopped"}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, f := fakeKind(t)
			f.units["fsgt.service"] = &unitState{load: "loaded", active: "active", fileState: "enabled"}
			err := k.Refresh(context.Background(), newEnv(), resource(t, "fsgt", c.spec), false)
			if c.skip != reconciler.IsSkip(err) || !c.skip && err != nil {
				t.Fatalf("Refresh = %v, want skip %v", err, c.skip)
			}
			if got := f.takeCalls(); !slices.Equal(got, c.want) {
				t.Fatalf("refresh called %q, want %q", got, c.want)
			}
		})
	}
}

func TestKind_Apply_failedJob(t *testing.T) {
	k, f := fakeKind(t)
	f.units["fsgt.service"] = &unitState{load: "loaded", active: "inactive", fileState: "enabled"}
	f.result = "failed"
	p := mustPlan(t, k, newEnv(), resource(t, "fsgt", map[string]any{}))
	err := p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "job failed") || !strings.Contains(err.Error(), "journalctl -u fsgt.service") {
		t.Fatalf("Apply = %v, want the job's failure and where to look", err)
	}
}

func TestKind_Apply_unitFileMissing(t *testing.T) {
	k, _ := fakeKind(t)
	p := mustPlan(t, k, newEnv(), resource(t, "fsgt", map[string]any{}))
	err := p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not-found after daemon-reload") {
		t.Fatalf("Apply = %v, want an error saying the unit is still not found", err)
	}
}

// TestKind_live runs against the host's systemd with a throw-away unit. It
// runs only where systemd is PID 1, as root: on the machines that run
// fsgit's CI, TestKind_liveSystemdContainer runs it in a container that
// boots systemd. It checks every step against what systemd itself says
// (systemctl), not what the kind says: a new unit file is loaded and
// started, a second run changes nothing (same main PID), a refresh in the
// run that started it restarts nothing, one in a later run restarts it, a
// changed unit file is a change, and stopping is disruptive.
func TestKind_live(t *testing.T) {
	if err := systemdBooted(); err != nil {
		t.Skipf("systemd is not running on this host (%v): the live path cannot run here", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("managing units needs root")
	}
	ctx := context.Background()
	unit := "fsgt-live-test.service"
	path := filepath.Join("/run/systemd/system", unit)
	writeUnit := func(exe string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("[Service]\nExecStart="+exe+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// show reads a unit property from systemd, outside the kind.
	show := func(prop string) string {
		t.Helper()
		out, err := exec.Command("systemctl", "show", "--property="+prop, "--value", unit).Output()
		if err != nil {
			t.Fatalf("systemctl show %s: %v", prop, err)
		}
		return strings.TrimSpace(string(out))
	}
	mainPID := func() string {
		t.Helper()
		if a := show("ActiveState"); a != "active" {
			t.Fatalf("%s is %s, want active", unit, a)
		}
		pid := show("MainPID")
		if pid == "" || pid == "0" {
			t.Fatalf("%s is active without a main PID", unit)
		}
		return pid
	}
	writeUnit("/bin/sleep infinity")
	t.Cleanup(func() {
		_ = exec.Command("systemctl", "stop", unit).Run()
		_ = os.Remove(path)
		_ = exec.Command("systemctl", "daemon-reload").Run()
	})
	k := New()
	// A unit in /run has no [Install]: it is static, enable does not apply.
	r := resource(t, "fsgt-live-test", map[string]any{"ensure": "running"})

	// Run 1: the unit is new to systemd and started in one apply. (systemd
	// loads a new unit file on demand when its properties are first read,
	// so the plan sees it loaded and inactive: an update, not a create.)
	env := newEnv()
	p := mustPlan(t, k, env, r)
	if !slices.ContainsFunc(p.Changes, func(c reconciler.Change) bool { return c.Field == "ensure" }) {
		t.Fatalf("first plan = %s %+v, want the ensure change", p.Action, p.Changes)
	}
	if a := show("ActiveState"); a != "inactive" {
		t.Fatalf("%s is %s after the plan, want inactive: a plan must not start it", unit, a)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	pid := mainPID()
	if err := k.Refresh(ctx, env, r, true); !reconciler.IsSkip(err) {
		t.Fatalf("Refresh in the run that started the unit = %v, want a skip", err)
	}
	if got := mainPID(); got != pid {
		t.Fatalf("main PID %s -> %s: a refresh right after the start restarted the unit", pid, got)
	}
	if err := env.Cache.Close(); err != nil {
		t.Fatal(err)
	}

	// Run 2: nothing to do, nothing done.
	env = newEnv()
	defer env.Cache.Close()
	p = mustPlan(t, k, env, r)
	if p.HasChanges() || p.Apply != nil {
		t.Fatalf("second plan has changes: %+v", p.Changes)
	}
	if p.Observed["active"] != "active" {
		t.Fatalf("second plan observed %v, want active", p.Observed)
	}
	if got := mainPID(); got != pid {
		t.Fatalf("main PID %s -> %s after a quiet run", pid, got)
	}

	// A notify edge in a run that did not start it restarts the unit.
	if err := k.Refresh(ctx, env, r, false); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	restarted := mainPID()
	if restarted == pid {
		t.Fatalf("main PID still %s after a refresh: not restarted", pid)
	}

	// Run 3: the unit file changed on disk: a change, and the apply loads it.
	writeUnit("/bin/sleep 86400")
	env3 := newEnv()
	defer env3.Cache.Close()
	p = mustPlan(t, k, env3, r)
	if len(p.Changes) != 1 || p.Changes[0].Field != "unitFile" {
		t.Fatalf("plan after the unit file changed: %+v, want the unitFile change", p.Changes)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := show("NeedDaemonReload"); got != "no" {
		t.Fatalf("NeedDaemonReload = %s after the apply, want no", got)
	}
	if got := show("ExecStart"); !strings.Contains(got, "86400") {
		t.Fatalf("ExecStart = %s: the new unit file is not loaded", got)
	}

	// Run 3b: a NEW drop-in (its directory did not exist when systemd
	// loaded the unit): systemd's NeedDaemonReload does not see it, the
	// kind must. Before the fix the plan was empty and the drop-in never
	// took effect (the fleet's chrony drop-in).
	dropInDir := path + ".d"
	t.Cleanup(func() { _ = os.RemoveAll(dropInDir) })
	writeDropIn := func(content string) {
		t.Helper()
		if err := os.MkdirAll(dropInDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dropInDir, "10-fsgit-test.conf"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeDropIn("[Service]\nExecStart=\nExecStart=/bin/sleep 7777\n")
	if got := show("NeedDaemonReload"); got != "no" {
		t.Logf("note: systemd itself says NeedDaemonReload=%s for a new drop-in", got)
	}
	p = mustPlan(t, k, newEnvClosed(t), r)
	if len(p.Changes) != 1 || p.Changes[0].Field != "unitFile" {
		t.Fatalf("plan after a new drop-in: %+v, want the unitFile change", p.Changes)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := show("ExecStart"); !strings.Contains(got, "7777") {
		t.Fatalf("ExecStart = %s: the new drop-in is not loaded", got)
	}
	if p := mustPlan(t, k, newEnvClosed(t), r); p.HasChanges() {
		t.Fatalf("plan after the drop-in was loaded has changes: %+v", p.Changes)
	}

	// Run 3c: a start that systemd skips for an unmet condition is an
	// error that names the condition, not a "done" start that leaves the
	// unit inactive (Debian's chrony without CAP_SYS_TIME).
	if err := exec.Command("systemctl", "stop", unit).Run(); err != nil {
		t.Fatal(err)
	}
	writeDropIn("[Unit]\nConditionPathExists=/nonexistent-fsgit\n[Service]\nExecStart=\nExecStart=/bin/sleep 7777\n")
	if err := exec.Command("systemctl", "daemon-reload").Run(); err != nil {
		t.Fatal(err)
	}
	p = mustPlan(t, k, newEnvClosed(t), r)
	if err := p.Apply(ctx); err == nil || !strings.Contains(err.Error(), "ConditionPathExists=/nonexistent-fsgit") {
		t.Fatalf("start with an unmet condition = %v, want an error naming ConditionPathExists", err)
	}
	if err := os.RemoveAll(dropInDir); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("systemctl", "daemon-reload").Run(); err != nil {
		t.Fatal(err)
	}
	if p := mustPlan(t, k, newEnvClosed(t), r); p.Apply == nil || p.Apply(ctx) != nil {
		t.Fatalf("start again without the condition: %+v", p.Changes)
	}
	mainPID()

	// Run 3d: a unit that is still starting (someone else's start job, or
	// boot) is waited for: the plan sees it active, so that what requires
	// it (a database on its socket) does not run against a server that is
	// not up yet. Before, the plan counted "activating" as running and the
	// dependents failed (the fleet's online-1 after a reboot).
	writeDropIn("[Service]\nExecStartPre=/bin/sleep 2\n")
	if err := exec.Command("systemctl", "daemon-reload").Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("systemctl", "restart", "--no-block", unit).Run(); err != nil {
		t.Fatal(err)
	}
	if a := show("ActiveState"); a != "activating" {
		t.Fatalf("%s is %s right after a non-blocking restart, want activating (the test's premise)", unit, a)
	}
	p = mustPlan(t, k, newEnvClosed(t), r)
	if p.Observed["active"] != "active" || p.HasChanges() {
		t.Fatalf("plan of a starting unit observed %v with %+v, want it waited for until active", p.Observed, p.Changes)
	}
	if err := os.RemoveAll(dropInDir); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("systemctl", "daemon-reload").Run(); err != nil {
		t.Fatal(err)
	}

	// Run 4: stopping is disruptive, and done.
	stopped := resource(t, "fsgt-live-test", map[string]any{"ensure": "stopped"})
	env4 := newEnv()
	defer env4.Cache.Close()
	p = mustPlan(t, k, env4, stopped)
	if p.MaxClass() != reconciler.Disruptive {
		t.Fatalf("stop plan = %s %+v, want disruptive", p.MaxClass(), p.Changes)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if a := show("ActiveState"); a != "inactive" {
		t.Fatalf("%s is %s after the stop, want inactive", unit, a)
	}
	if p := mustPlan(t, k, newEnvClosed(t), stopped); p.HasChanges() {
		t.Fatalf("plan after the stop has changes: %+v", p.Changes)
	}
}

// newEnvClosed is newEnv with its cache (the D-Bus connection) closed when
// the test ends.
func newEnvClosed(t testing.TB) *reconciler.Env {
	env := newEnv()
	t.Cleanup(func() { _ = env.Cache.Close() })
	return env
}

func TestKind_Preview(t *testing.T) {
	r := func(spec map[string]any) *reconciler.Resource { return resource(t, "nginx", spec) }
	cases := []struct {
		name     string
		old, new *reconciler.Resource
		class    reconciler.Class
	}{
		{"new", nil, r(map[string]any{}), reconciler.Safe},
		{"stop", r(map[string]any{}), r(map[string]any{"ensure": "stopped"}), reconciler.Disruptive},
		{"start", r(map[string]any{"ensure": "stopped"}), r(map[string]any{}), reconciler.Safe},
		{"disable", r(map[string]any{}), r(map[string]any{"enable": false}), reconciler.Safe},
		{"left the catalog", r(map[string]any{}), nil, reconciler.Safe},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := New().Preview(c.old, c.new); got != c.class {
				t.Fatalf("Preview = %s, want %s", got, c.class)
			}
		})
	}
}

// TestKind_Refresh_afterEnableOnly: a run whose own change was only
// enablement did not start the unit, so a notify still restarts it.
func TestKind_Refresh_afterEnableOnly(t *testing.T) {
	k, f := fakeKind(t)
	f.units["fsgt.service"] = &unitState{load: "loaded", active: "active", fileState: "disabled"}
	r := resource(t, "fsgt", map[string]any{})
	env := newEnv()
	p := mustPlan(t, k, env, r)
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(context.Background(), env, r, true); err != nil {
		t.Fatal(err)
	}
	if got, want := f.takeCalls(), []string{"enable fsgt.service", "restart fsgt.service"}; !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}
