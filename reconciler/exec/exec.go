// Package exec implements the "exec" resource kind: a command run on the
// host when a guard says it is needed. It is an escape hatch for what no
// other kind expresses, so it is kept honest: every exec has a guard
// (creates, unless, onlyIf, or refreshOnly), which makes a second run
// quiet.
//
// The guards follow Puppet's exec: creates skips the command when a path
// exists; unless skips it when its own command exits 0; onlyIf runs it only
// when its own command exits 0; refreshOnly runs it only when a resource
// that notifies it changed (and its other guards, if any, agree). Commands
// are argv lists run without a shell.
//
// Guard commands run during Plan, in noop too: they must only look. An exec
// runs host commands, so it is skipped under --root.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// KindName is the kind's name in resource IDs: "exec:initdb".
const KindName = "exec"

// maxOutput bounds how much of a failed command's output goes into its
// error.
const maxOutput = 2048

// Spec is the exec resource's spec, as written in CUE.
type Spec struct {
	// Command is the argv to run; Command[0] is an absolute path.
	Command []string `json:"command"`
	// Creates skips the command when this path exists.
	Creates string `json:"creates,omitempty"`
	// Unless skips the command when this argv exits 0.
	Unless []string `json:"unless,omitempty"`
	// OnlyIf runs the command only when this argv exits 0.
	OnlyIf []string `json:"onlyIf,omitempty"`
	// RefreshOnly runs the command only when a notifying resource changed.
	RefreshOnly bool `json:"refreshOnly,omitempty"`
	// Cwd is the working directory (default: /).
	Cwd string `json:"cwd,omitempty"`
	// Env is added to fsgit's environment for the command and its guards.
	Env map[string]string `json:"env,omitempty"`
	// User runs the command and its guards as this user (name or uid).
	User string `json:"user,omitempty"`
	// Timeout bounds the command and each guard ("30s", "5m"; the schema
	// defaults it to 5m).
	Timeout string `json:"timeout,omitempty"`
}

// Kind is the exec kind.
type Kind struct{}

var (
	_ reconciler.KindOf[spec]        = (*Kind)(nil)
	_ reconciler.SpecRefresher[spec] = (*Kind)(nil)
	_ reconciler.SpecTimeouter[spec] = (*Kind)(nil)
)

// New returns the exec kind.
func New() *reconciler.Typed[spec] { return reconciler.NewTyped(&Kind{}) }

// Kind returns "exec".
func (k *Kind) Kind() string { return KindName }

// Timeout gives the engine room for two guards and the command, each
// bounded by the spec's timeout, plus a minute.
func (k *Kind) Timeout(s *spec) time.Duration {
	return 3*s.timeout + time.Minute
}

// spec is a decoded, checked Spec.
type spec struct {
	Spec
	timeout time.Duration
}

// Check parses the timeout. The commands, the guard, the paths, env's
// names and the timeout's form are the schema's (#Exec, #Kinds: exec).
func (k *Kind) Check(r *reconciler.Resource, s *spec) error {
	if len(s.Command) == 0 {
		// Not a constraint but the run's invariant: it starts
		// command[0], and a spec decoded outside a catalog must not
		// crash it.
		return fmt.Errorf("validate %s: command is empty", r.ID)
	}
	d, err := time.ParseDuration(s.Timeout)
	if err != nil || d <= 0 {
		// #Duration lets "0s" through.
		return fmt.Errorf("validate %s: timeout %q is not a positive duration like 30s or 5m", r.ID, s.Timeout)
	}
	s.timeout = d
	return nil
}

// Plan evaluates the guards and plans to run the command when they all
// agree. A refreshOnly exec never has changes of its own.
func (k *Kind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec) (*reconciler.Plan, error) {
	if env.Root != "" {
		return nil, reconciler.Skip(fmt.Sprintf("exec runs host commands and cannot honour --root %s", env.Root))
	}
	p := &reconciler.Plan{Observed: map[string]string{}}
	if s.RefreshOnly {
		p.Observed["refreshOnly"] = "true"
		return p, nil
	}
	run, why, err := k.guards(ctx, env, s)
	if err != nil {
		return nil, fmt.Errorf("check guards of %s: %w", r.ID, err)
	}
	p.Observed["guard"] = why
	if !run {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	p.Changes = []reconciler.Change{{Field: "command", Before: why, After: "run " + quote(s.Command), Class: reconciler.Safe}}
	p.Apply = func(ctx context.Context) error {
		if err := k.run(ctx, env, r, s); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return p, nil
}

// Refresh runs a refreshOnly command when its guards agree. An exec that
// is not refreshOnly runs again on refresh only if it did not just run and
// its guards now say it should (as in Puppet). When it does not run, it
// returns a skip saying why, so that the run reports no refresh and sends
// none further along notify edges.
func (k *Kind) Refresh(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec, changed bool) error {
	if env.Root != "" {
		return reconciler.Skip(fmt.Sprintf("exec runs host commands and cannot honour --root %s", env.Root))
	}
	if changed && !s.RefreshOnly {
		return reconciler.Skip("the command already ran in this run")
	}
	run, why, err := k.guards(ctx, env, s)
	if err != nil {
		return fmt.Errorf("check guards of %s: %w", r.ID, err)
	}
	if !run {
		return reconciler.Skip("guard: " + why)
	}
	if err := k.run(ctx, env, r, s); err != nil {
		return fmt.Errorf("refresh %s: %w", r.ID, err)
	}
	return nil
}

// guards reports whether every guard lets the command run, and says which
// guard decided, for the plan and the observed state.
func (k *Kind) guards(ctx context.Context, env *reconciler.Env, s *spec) (run bool, why string, err error) {
	if s.Creates != "" {
		p, err := env.Path(s.Creates)
		if err != nil {
			return false, "", fmt.Errorf("map creates: %w", err)
		}
		if _, err := os.Lstat(p); err == nil {
			return false, s.Creates + " exists", nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, "", fmt.Errorf("check creates: %w", err)
		}
		why = s.Creates + " missing"
	}
	if len(s.Unless) > 0 {
		code, err := k.guard(ctx, s, s.Unless)
		if err != nil {
			return false, "", fmt.Errorf("run unless: %w", err)
		}
		if code == 0 {
			return false, "unless exited 0", nil
		}
		why = join(why, fmt.Sprintf("unless exited %d", code))
	}
	if len(s.OnlyIf) > 0 {
		code, err := k.guard(ctx, s, s.OnlyIf)
		if err != nil {
			return false, "", fmt.Errorf("run onlyIf: %w", err)
		}
		if code != 0 {
			return false, fmt.Sprintf("onlyIf exited %d", code), nil
		}
		why = join(why, "onlyIf exited 0")
	}
	if why == "" {
		why = "notified"
	}
	return true, why, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// guard runs a guard command and returns its exit code. Failing to start
// it, or a timeout, is an error, not a "no".
func (k *Kind) guard(ctx context.Context, s *spec, argv []string) (int, error) {
	_, err := k.command(ctx, s, argv)
	if err == nil {
		return 0, nil
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.code >= 0 {
		return ee.code, nil
	}
	return 0, err
}

// run runs the command itself and checks that creates now exists.
func (k *Kind) run(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *spec) error {
	start := time.Now()
	out, err := k.command(ctx, s, s.Command)
	if err != nil {
		return err
	}
	if env.Log != nil {
		env.Log.Info("exec ran", "id", r.ID, "duration", time.Since(start), "output_bytes", len(out))
	}
	if s.Creates != "" {
		p, err := env.Path(s.Creates)
		if err != nil {
			return fmt.Errorf("map creates: %w", err)
		}
		if _, err := os.Lstat(p); err != nil {
			return fmt.Errorf("command %s succeeded but did not create %s, so it would run again next time: %w", quote(s.Command), s.Creates, err)
		}
	}
	return nil
}

// exitError is a command that ran and failed, with its output's ends.
type exitError struct {
	argv   []string
	code   int // -1 when killed by a signal
	err    error
	output string
}

func (e *exitError) Error() string {
	msg := fmt.Sprintf("command %s: %v", quote(e.argv), e.err)
	if e.output != "" {
		msg += ": output: " + e.output
	}
	return msg
}

func (e *exitError) Unwrap() error { return e.err }

// command runs argv with the spec's cwd, env, user and timeout, and returns
// its combined output. The command runs in its own process group, which is
// killed whole on timeout or cancellation.
func (k *Kind) command(ctx context.Context, s *spec, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.Cwd
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(s.Env))
	for key := range s.Env {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		cmd.Env = append(cmd.Env, key+"="+s.Env[key])
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.User != "" {
		cred, home, err := credential(s.User)
		if err != nil {
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
		cmd.Env = append(cmd.Env, "HOME="+home, "USER="+s.User, "LOGNAME="+s.User)
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipe open must not hang us.
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", s.timeout, err)
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &exitError{argv: argv, code: ee.ExitCode(), err: err, output: clip(out.Bytes(), maxOutput)}
	}
	return out.Bytes(), fmt.Errorf("start command %s: %w", quote(argv), err)
}

// credential looks up a user (by name or uid) for running a command as it.
func credential(name string) (*syscall.Credential, string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return nil, "", fmt.Errorf("look up user %q: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, "", fmt.Errorf("parse uid of %q: %w", name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, "", fmt.Errorf("parse gid of %q: %w", name, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, u.HomeDir, nil
}

// clip keeps the head and the tail of a long output, where the command's
// first complaint and its final error usually are.
func clip(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	half := n / 2
	return fmt.Sprintf("%s\n… (%d bytes cut) …\n%s", b[:half], len(b)-2*half, b[len(b)-half:])
}

// quote renders an argv for a message, quoting words that need it.
func quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?[]{}~") {
			q[i] = strconv.Quote(a)
		} else {
			q[i] = a
		}
	}
	return "[" + strings.Join(q, " ") + "]"
}

var _ reconciler.Previewer = (*Kind)(nil)

// Preview classes a catalog change without observing: an exec may run
// (when its guards say so), which is safe as far as fsgit can tell; one
// that leaves the catalog leaves nothing behind to remove.
func (k *Kind) Preview(old, new *reconciler.Resource) (reconciler.Class, string) {
	if new == nil {
		return reconciler.Safe, "nothing (an exec leaves no state to remove)"
	}
	if s, err := reconciler.DecodeAs(k, new); err == nil && !s.RefreshOnly {
		return reconciler.Safe, "run command if its guards say so"
	}
	return reconciler.Safe, ""
}
