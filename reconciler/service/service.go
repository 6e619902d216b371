// Package service implements the "service" resource kind: a systemd unit
// that is running or stopped, enabled at boot or not, restarted (or
// reloaded) when a resource that notifies it changed.
//
// It talks to systemd over D-Bus (the system bus, or systemd's private
// socket when the bus is down), one connection per run kept in the run's
// cache. A unit file is managed by a separate file resource that notifies
// the service; when systemd reports that a unit's file changed on disk
// (its NeedDaemonReload property), the plan says so and apply or refresh
// runs a daemon-reload first.
//
// On a host where systemd is not PID 1 (a container, a chroot) and under
// --root, every service resource is skipped with the reason, never faked.
//
// A service that leaves the catalog is left as it is: the kind does not
// implement [reconciler.Pruner]. Stopping software because a line
// disappeared from a catalog is rarely what was meant; say ensure
// "stopped" and enable false.
package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/fsgit/fsgit/reconciler"
)

// KindName is the kind's name in resource IDs: "service:mariadb".
const KindName = "service"

const (
	ensureRunning = "running"
	ensureStopped = "stopped"

	refreshRestart    = "restart"
	refreshReload     = "reload"
	refreshTryRestart = "try-restart"
)

// Cache keys: the run's connection, and the units this run started.
const (
	cacheConn    = "service/systemd"
	cacheStarted = "service/started"
)

// unitSuffixes are the unit types a name may already carry; other names
// get ".service".
var unitSuffixes = []string{".service", ".socket", ".timer", ".target", ".path", ".mount"}

// Spec is the service resource's spec, as written in CUE.
type Spec struct {
	// Name is the unit's name without ".service"; empty means the
	// resource's name.
	Name string `json:"name,omitempty"`
	// Ensure is "running" (default) or "stopped".
	Ensure string `json:"ensure,omitempty"`
	// Enable starts the unit at boot (default true).
	Enable bool `json:"enable,omitempty"`
	// Refresh is what a notify edge does: "restart" (default), "reload"
	// or "try-restart" (restart only if running).
	Refresh string `json:"refresh,omitempty"`
}

// manager is the part of systemd's D-Bus API that the kind uses. It is
// satisfied by *dbus.Conn; it exists so that the tests can show the calls
// the kind makes, since systemd cannot run where they run.
type manager interface {
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	TryRestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	ReloadUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	EnableUnitFilesContext(ctx context.Context, files []string, runtime, force bool) (bool, []dbus.EnableUnitFileChange, error)
	DisableUnitFilesContext(ctx context.Context, files []string, runtime bool) ([]dbus.DisableUnitFileChange, error)
	ReloadContext(ctx context.Context) error
	Close()
}

var _ manager = (*dbus.Conn)(nil)

// Kind is the service kind. Its zero value is not usable; call New.
type Kind struct {
	// booted reports whether systemd manages this host, with a reason
	// when it does not.
	booted func() error
	// dial connects to systemd.
	dial func(ctx context.Context) (manager, error)
	// dropIns lists the names of the unit's drop-in files on disk now
	// (nil: dropInsOnDisk).
	dropIns func(unit string) []string
}

// dropInDirs are where systemd looks for a unit's drop-ins (<unit>.d/),
// in its order of precedence.
var dropInDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// dropInsOnDisk returns the names of the unit's *.conf drop-ins in the
// directories systemd reads (a name in a higher directory hides the same
// name in a lower one, so names are what counts).
func dropInsOnDisk(unit string) []string {
	var names []string
	for _, dir := range dropInDirs {
		m, _ := filepath.Glob(filepath.Join(dir, unit+".d", "*.conf"))
		for _, f := range m {
			names = append(names, filepath.Base(f))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// props reads the unit's properties and, into NeedDaemonReload, whether
// its drop-ins on disk differ from the ones systemd loaded: systemd's own
// NeedDaemonReload sees a loaded drop-in change, but not a new drop-in
// directory or file (a drop-in written by this very run, say).
func (k *Kind) props(ctx context.Context, m manager, unit string) (map[string]any, error) {
	props, err := m.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return nil, err
	}
	if load, _ := props["LoadState"].(string); load != "loaded" {
		return props, nil
	}
	onDisk := dropInsOnDisk
	if k.dropIns != nil {
		onDisk = k.dropIns
	}
	loaded, _ := props["DropInPaths"].([]string)
	names := make([]string, 0, len(loaded))
	for _, p := range loaded {
		if strings.HasSuffix(p, ".conf") && filepath.Base(filepath.Dir(p)) == unit+".d" {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if !slices.Equal(names, onDisk(unit)) {
		props["NeedDaemonReload"] = true
	}
	return props, nil
}

var (
	_ reconciler.KindOf[spec]        = (*Kind)(nil)
	_ reconciler.SpecRefresher[spec] = (*Kind)(nil)
)

// New returns the service kind, talking to the host's systemd.
func New() *reconciler.Typed[spec] {
	return reconciler.NewTyped(&Kind{
		booted: systemdBooted,
		dial: func(ctx context.Context) (manager, error) {
			// As root, systemd's private socket first, as systemctl
			// does: it does not go through dbus-daemon, which at boot
			// (the agent's first run) can drop a call with "Message
			// recipient disconnected from message bus".
			if os.Geteuid() == 0 {
				if c, err := dbus.NewSystemdConnectionContext(ctx); err == nil {
					return c, nil
				}
			}
			c, err := dbus.NewWithContext(ctx)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// systemdBooted is sd_booted(): systemd creates /run/systemd/system when
// it runs as PID 1.
func systemdBooted() error {
	if fi, err := os.Lstat("/run/systemd/system"); err == nil && fi.IsDir() {
		return nil
	}
	pid1 := "unknown"
	if b, err := os.ReadFile("/proc/1/comm"); err == nil {
		pid1 = strings.TrimSpace(string(b))
	}
	return fmt.Errorf("/run/systemd/system does not exist and PID 1 is %q", pid1)
}

// Kind returns "service".
func (k *Kind) Kind() string { return KindName }

// spec is a decoded Spec with the full unit name.
type spec struct {
	Spec
	unit string
}

// Check finds the full unit name (the name taken from the ID when the
// spec has none). The schema states the name's characters, ensure and
// refresh; not the length.
func (k *Kind) Check(r *reconciler.Resource, s *spec) error {
	if s.Name == "" {
		s.Name = r.Name()
	}
	if len(s.Name) > 240 {
		// systemd refuses a unit name over 255 bytes with its suffix:
		// #ServiceName does not bound the length.
		return fmt.Errorf("validate %s: %q is not a systemd unit name: longer than 240 bytes", r.ID, s.Name)
	}
	s.unit = s.Name + ".service"
	for _, suffix := range unitSuffixes {
		if strings.HasSuffix(s.Name, suffix) {
			s.unit = s.Name
		}
	}
	return nil
}

// conn is the run's connection to systemd, closed with the run's cache.
type conn struct{ manager }

// Close implements io.Closer for the run's cache.
func (c conn) Close() error { c.manager.Close(); return nil }

// connect returns the run's connection, or a skip when systemd does not
// manage this host.
func (k *Kind) connect(ctx context.Context, env *reconciler.Env) (manager, error) {
	if env.Root != "" {
		return nil, reconciler.Skip(fmt.Sprintf("services cannot be managed under --root %s: systemd acts on the host", env.Root))
	}
	v, err := env.Cache.Once(cacheConn, func() (any, error) {
		if err := k.booted(); err != nil {
			return nil, reconciler.Skip("systemd is not running on this host: " + err.Error())
		}
		// The connection serves every service resource of the run: it
		// must not end with this resource's context (go-systemd closes
		// a connection when its dial context is done).
		m, err := k.dial(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
		}
		return conn{m}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(conn).manager, nil
}

// unitState is what systemd says about a unit, reduced to what the kind
// compares.
type unitState struct {
	// load is LoadState: loaded, not-found, masked, error, ...
	load string
	// active is ActiveState: active, inactive, failed, activating, ...
	active string
	// fileState is UnitFileState: enabled, disabled, static, masked, ...
	fileState string
	// needReload is NeedDaemonReload: the unit's file changed on disk
	// since systemd loaded it.
	needReload bool
}

func stateOf(props map[string]any) unitState {
	str := func(k string) string { s, _ := props[k].(string); return s }
	reload, _ := props["NeedDaemonReload"].(bool)
	return unitState{load: str("LoadState"), active: str("ActiveState"), fileState: str("UnitFileState"), needReload: reload}
}

// running reports whether the unit counts as running: up, or on its way.
func (u unitState) running() bool {
	switch u.active {
	case "active", "reloading", "activating", "refreshing":
		return true
	}
	return false
}

// enabled reports whether the unit starts at boot, and whether that can
// be changed at all: static, generated, transient and indirect units have
// no [Install] section of their own to enable.
func (u unitState) enabled() (on, settable bool) {
	switch u.fileState {
	case "enabled", "enabled-runtime":
		return true, true
	case "disabled", "linked", "linked-runtime", "":
		return false, true
	}
	return false, false
}

func (u unitState) describeActive() string {
	if u.load == "not-found" {
		return "not-found"
	}
	if u.running() {
		return ensureRunning
	}
	return ensureStopped + " (" + u.active + ")"
}

func (u unitState) observed() map[string]string {
	return map[string]string{"load": u.load, "active": u.active, "unitFileState": u.fileState}
}

// actions is what an apply does, in this order.
type actions struct {
	daemonReload bool
	enable       bool
	disable      bool
	start        bool
	stop         bool
}

// diff compares the desired service with the unit's state.
func diff(s *spec, u unitState) ([]reconciler.Change, actions, error) {
	var (
		changes []reconciler.Change
		a       actions
	)
	if strings.HasPrefix(u.load, "masked") || strings.HasPrefix(u.fileState, "masked") {
		if s.Ensure == ensureRunning || s.Enable {
			return nil, a, fmt.Errorf("unit %s is masked: unmask it (fsgit does not) or want it stopped and disabled", s.unit)
		}
		return nil, a, nil
	}
	switch {
	case u.load == "not-found":
		if s.Ensure == ensureStopped && !s.Enable {
			return nil, a, nil // nothing to stop, nothing to disable
		}
		// Its file may have been written by this run: reload, then look.
		a.daemonReload = true
		changes = append(changes, reconciler.Change{Field: "unitFile", Before: "not loaded", After: "loaded", Class: reconciler.Safe})
	case u.needReload:
		a.daemonReload = true
		changes = append(changes, reconciler.Change{Field: "unitFile", Before: "changed on disk", After: "reloaded", Class: reconciler.Safe})
	case u.load == "error" || u.load == "bad-setting":
		return nil, a, fmt.Errorf("unit %s failed to load (LoadState %s): see systemctl status %s", s.unit, u.load, s.unit)
	}
	if on, settable := u.enabled(); settable && on != s.Enable {
		a.enable, a.disable = s.Enable, !s.Enable
		changes = append(changes, reconciler.Change{Field: "enable", Before: fmt.Sprint(on), After: fmt.Sprint(s.Enable), Class: reconciler.Safe})
	}
	switch {
	case s.Ensure == ensureRunning && !u.running():
		a.start = true
		changes = append(changes, reconciler.Change{Field: "ensure", Before: u.describeActive(), After: ensureRunning, Class: reconciler.Safe})
	case s.Ensure == ensureStopped && u.running():
		a.stop = true
		changes = append(changes, reconciler.Change{Field: "ensure", Before: u.describeActive(), After: ensureStopped, Class: reconciler.Disruptive})
	}
	return changes, a, nil
}

// Plan reads the unit's properties and compares them with the spec.
func (k *Kind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec) (*reconciler.Plan, error) {
	m, err := k.connect(ctx, env)
	if err != nil {
		return nil, err
	}
	props, err := k.props(ctx, m, s.unit)
	if err == nil {
		props, err = k.settle(ctx, m, s.unit, props)
	}
	if err != nil {
		return nil, fmt.Errorf("observe %s: read properties of %s: %w", r.ID, s.unit, err)
	}
	u := stateOf(props)
	changes, a, err := diff(s, u)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	p := &reconciler.Plan{Changes: changes, Observed: u.observed()}
	if len(changes) == 0 {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	if u.load == "not-found" {
		p.Action = reconciler.ActionCreate
	}
	p.Apply = func(ctx context.Context) error {
		if err := k.apply(ctx, env, m, s, a); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return p, nil
}

// apply performs a plan's actions: daemon-reload first (the unit's new
// file must be what is enabled and started), then enablement, then the
// state.
func (k *Kind) apply(ctx context.Context, env *reconciler.Env, m manager, s *spec, a actions) error {
	if a.daemonReload {
		if err := m.ReloadContext(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
		props, err := m.GetUnitPropertiesContext(ctx, s.unit)
		if err != nil {
			return fmt.Errorf("read properties of %s: %w", s.unit, err)
		}
		if u := stateOf(props); u.load != "loaded" {
			return fmt.Errorf("unit %s is %s after daemon-reload: is its unit file in place?", s.unit, u.load)
		}
	}
	switch {
	case a.enable:
		if _, _, err := m.EnableUnitFilesContext(ctx, []string{s.unit}, false, false); err != nil {
			return fmt.Errorf("enable %s: %w", s.unit, err)
		}
	case a.disable:
		if _, err := m.DisableUnitFilesContext(ctx, []string{s.unit}, false); err != nil {
			return fmt.Errorf("disable %s: %w", s.unit, err)
		}
	}
	switch {
	case a.start:
		if err := job(ctx, "start", s.unit, m.StartUnitContext); err != nil {
			return err
		}
		if err := conditionMet(ctx, m, s.unit); err != nil {
			return err
		}
		// A refresh later in this run must not restart what just started.
		startedSet(env).add(s.unit)
	case a.stop:
		if err := job(ctx, "stop", s.unit, m.StopUnitContext); err != nil {
			return err
		}
	}
	return nil
}

// settleMax bounds how long a plan waits for a unit between states.
const settleMax = 90 * time.Second

// settle waits while the unit is between states (activating, deactivating,
// reloading) and returns its properties once it is not, or after
// settleMax: a unit that is still starting (at boot, say, while the agent
// already runs) is not yet what the resources that require it can use, and
// planning on "activating" let them fail against a server that was not up.
// A unit waiting to be restarted after a crash (SubState auto-restart) is
// not waited for.
func (k *Kind) settle(ctx context.Context, m manager, unit string, props map[string]any) (map[string]any, error) {
	deadline := time.Now().Add(settleMax)
	for {
		active, _ := props["ActiveState"].(string)
		sub, _ := props["SubState"].(string)
		switch active {
		case "activating", "deactivating", "reloading", "refreshing":
		default:
			return props, nil
		}
		if sub == "auto-restart" || time.Now().After(deadline) {
			return props, nil
		}
		select {
		case <-ctx.Done():
			return props, nil
		case <-time.After(200 * time.Millisecond):
		}
		p, err := k.props(ctx, m, unit)
		if err != nil {
			return nil, err
		}
		props = p
	}
}

// conditionMet returns an error when systemd skipped the unit's start
// because a Condition*= of the unit is not met: the start job still ends
// "done", but the unit stays inactive, and saying why beats a plan that
// wants to start it on every run.
func conditionMet(ctx context.Context, m manager, unit string) error {
	props, err := m.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return fmt.Errorf("read properties of %s: %w", unit, err)
	}
	if ok, known := props["ConditionResult"].(bool); !known || ok || stateOf(props).running() {
		return nil
	}
	var failed []string
	// Conditions is a(sbbsi): type, trigger, negate, parameter, state
	// (positive: met; systemd 252 reports a failed one as 0 or
	// negative); godbus hands structs over as []any.
	conds := reflect.ValueOf(props["Conditions"])
	if conds.Kind() == reflect.Slice {
		for i := range conds.Len() {
			c, ok := conds.Index(i).Interface().([]any)
			if !ok || len(c) != 5 {
				continue
			}
			if st, ok := c[4].(int32); ok && st <= 0 {
				neg := ""
				if b, _ := c[2].(bool); b {
					neg = "!"
				}
				failed = append(failed, fmt.Sprintf("%v=%s%v", c[0], neg, c[3]))
			}
		}
	}
	what := "a condition of the unit"
	if len(failed) > 0 {
		what = strings.Join(failed, ", ")
	}
	return fmt.Errorf("start %s: systemd skipped it: %s is not met (see systemctl status %s)", unit, what, unit)
}

// job queues a systemd job in "replace" mode and waits for its result.
func job(ctx context.Context, verb, unit string, queue func(context.Context, string, string, chan<- string) (int, error)) error {
	// Buffered: systemd's answer must not block the connection if we stop
	// waiting (go-systemd's rule).
	ch := make(chan string, 1)
	if _, err := queue(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s (see journalctl -u %s)", verb, unit, res, unit)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for the job: %w", verb, unit, ctx.Err())
	}
}

// Refresh restarts the unit (or reloads it, per the spec's refresh) after
// a resource that notifies it changed, with a daemon-reload first when its
// unit file changed. It restarts nothing, and returns a skip saying why, for
// a unit this run has just started (its own plan had changes: changed is
// true, and the apply started it; a change of enablement alone still
// restarts) and for a service that is meant to be stopped.
func (k *Kind) Refresh(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec, changed bool) error {
	m, err := k.connect(ctx, env)
	if err != nil {
		return err
	}
	if s.Ensure == ensureStopped {
		return reconciler.Skip("the service is meant to be stopped: not restarted")
	}
	if changed && startedSet(env).has(s.unit) {
		return reconciler.Skip("started by this run: not restarted")
	}
	props, err := k.props(ctx, m, s.unit)
	if err != nil {
		return fmt.Errorf("refresh %s: read properties of %s: %w", r.ID, s.unit, err)
	}
	if stateOf(props).needReload {
		if err := m.ReloadContext(ctx); err != nil {
			return fmt.Errorf("refresh %s: daemon-reload: %w", r.ID, err)
		}
	}
	queue, verb := m.RestartUnitContext, "restart"
	switch s.Refresh {
	case refreshReload:
		queue, verb = m.ReloadUnitContext, "reload"
	case refreshTryRestart:
		queue, verb = m.TryRestartUnitContext, "try-restart"
	}
	if err := job(ctx, verb, s.unit, queue); err != nil {
		return fmt.Errorf("refresh %s: %w", r.ID, err)
	}
	return nil
}

// started is the set of units this run's applies started.
type started struct {
	mu    sync.Mutex
	units map[string]bool
}

func startedSet(env *reconciler.Env) *started {
	v, _ := env.Cache.Once(cacheStarted, func() (any, error) { return &started{units: map[string]bool{}}, nil })
	return v.(*started)
}

func (s *started) add(unit string) {
	s.mu.Lock()
	s.units[unit] = true
	s.mu.Unlock()
}

func (s *started) has(unit string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.units[unit]
}

var _ reconciler.Previewer = (*Kind)(nil)

// Preview classes a catalog change without observing: stopping a service
// is disruptive; starting, enabling or changing how it refreshes is safe. A
// service that leaves the catalog is not touched.
func (k *Kind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Safe, "leave as is (services are not pruned)"
	}
	s, err := reconciler.DecodeAs(k, new)
	if err != nil {
		return reconciler.Safe, ""
	}
	was := ""
	if old != nil {
		if o, err := reconciler.DecodeAs(k, old); err == nil {
			was = o.Ensure
		}
	}
	switch {
	case s.Ensure == ensureStopped && was != ensureStopped:
		return reconciler.Disruptive, "stop service"
	case s.Ensure == ensureRunning && was != ensureRunning:
		return reconciler.Safe, "start service"
	}
	return reconciler.Safe, ""
}
