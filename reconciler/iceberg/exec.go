package iceberg

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// Executable is the name of the helper binary that holds the iceberg-go
// implementation, built next to fsgit by `make build`.
const Executable = "fsgit-iceberg"

// EnvExecutable names the environment variable that points at the helper
// binary, overriding the lookup next to fsgit and on PATH.
const EnvExecutable = "FSGIT_ICEBERG"

// ErrNotFound says that the helper binary is nowhere to be found.
var ErrNotFound = errors.New(Executable + " not found next to fsgit or on PATH; set " + EnvExecutable + " or build it with make build")

// Operations of the helper.
const (
	// OpPlan plans the resource (read only).
	OpPlan = "plan"
	// OpApply plans the resource again and applies that plan.
	OpApply = "apply"
	// OpPlanDelete plans removing a resource that left the catalog.
	OpPlanDelete = "plan-delete"
	// OpApplyDelete plans the removal again and applies it.
	OpApplyDelete = "apply-delete"
	// OpVerifyOffline is fsgit verify's offline step: append a history row
	// through the JDBC catalog and read it back.
	OpVerifyOffline = "verify-offline"
)

// Request is what fsgit writes to the helper's stdin, as JSON. Secrets
// holds the values of exactly the secrets the request needs, by name: it
// travels only over the pipe, never in argv, the environment or a file.
type Request struct {
	Op       string               `json:"op"`
	Resource *reconciler.Resource `json:"resource,omitempty"`
	Root     string               `json:"root,omitempty"`
	Noop     bool                 `json:"noop,omitempty"`
	Secrets  map[string]string    `json:"secrets,omitempty"`
	// Debug asks the helper to log at debug level on its stderr.
	Debug bool `json:"debug,omitempty"`
	// Verify is the input of OpVerifyOffline.
	Verify *VerifyRequest `json:"verify,omitempty"`
}

// VerifyRequest is the offline verification's input: the table, and the
// feature's history row to append.
type VerifyRequest struct {
	Table   TableSpec `json:"table"`
	Entity  string    `json:"entity"`
	Feature string    `json:"feature"`
	Value   float64   `json:"value"`
	Time    time.Time `json:"time,omitzero"`
}

// Response is what the helper writes to its stdout, as JSON.
type Response struct {
	// Plan is the plan found (for apply ops: the plan that was applied).
	Plan *PlanResult `json:"plan,omitempty"`
	// Lines are the verification's report lines, for people.
	Lines []string `json:"lines,omitempty"`
	// Error is set when the op failed.
	Error *ErrorResult `json:"error,omitempty"`
}

// PlanResult is a [reconciler.Plan] without its Apply closure.
type PlanResult struct {
	Action   reconciler.Action `json:"action,omitempty"`
	Changes  []ChangeResult    `json:"changes,omitempty"`
	Observed map[string]string `json:"observed,omitempty"`
	Warning  string            `json:"warning,omitempty"`
}

// ChangeResult is a [reconciler.Change] with its class as text.
type ChangeResult struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Class  string `json:"class"`
}

// ErrorResult is an error that crossed the pipe. Kind "refused" carries a
// [*RefusedError]; kind "skip" a [reconciler.SkipError].
type ErrorResult struct {
	Message string        `json:"message"`
	Kind    string        `json:"kind,omitempty"`
	Refused *RefusedError `json:"refused,omitempty"`
}

// NewPlanResult converts a plan for the wire.
func NewPlanResult(p *reconciler.Plan) *PlanResult {
	if p == nil {
		return nil
	}
	out := &PlanResult{Action: p.Action, Observed: p.Observed, Warning: p.Warning}
	for _, c := range p.Changes {
		out.Changes = append(out.Changes, ChangeResult{Field: c.Field, Before: c.Before, After: c.After, Class: c.Class.String()})
	}
	return out
}

// Plan converts the result back to a plan, without Apply.
func (p *PlanResult) Plan() (*reconciler.Plan, error) {
	out := &reconciler.Plan{Action: p.Action, Observed: p.Observed, Warning: p.Warning}
	for _, c := range p.Changes {
		var cl reconciler.Class
		switch c.Class {
		case "safe":
			cl = reconciler.Safe
		case "disruptive":
			cl = reconciler.Disruptive
		case "destructive":
			cl = reconciler.Destructive
		default:
			return nil, fmt.Errorf("read %s's plan: change %s has unknown class %q", Executable, c.Field, c.Class)
		}
		out.Changes = append(out.Changes, reconciler.Change{Field: c.Field, Before: c.Before, After: c.After, Class: cl})
	}
	return out, nil
}

// NewErrorResult converts an error for the wire, keeping a refusal or a
// skip recognizable.
func NewErrorResult(err error) *ErrorResult {
	if err == nil {
		return nil
	}
	e := &ErrorResult{Message: err.Error()}
	var re *RefusedError
	switch {
	case errors.As(err, &re):
		e.Kind, e.Refused = "refused", re
	case reconciler.IsSkip(err):
		e.Kind = "skip"
	}
	return e
}

// Err converts the result back to an error: a *RefusedError, a
// *reconciler.SkipError, or a plain error with the helper's message.
func (e *ErrorResult) Err() error {
	if e == nil {
		return nil
	}
	switch {
	case e.Kind == "refused" && e.Refused != nil:
		return e.Refused
	case e.Kind == "skip":
		return reconciler.Skip(e.Message)
	}
	return errors.New(e.Message)
}

// LookPath finds the helper: $FSGIT_ICEBERG, else next to the running
// executable, else on PATH. It returns [ErrNotFound] when none exists.
func LookPath() (string, error) {
	if p := os.Getenv(EnvExecutable); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvExecutable, p, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), Executable)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(Executable); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}

// stderrCap bounds how much of the helper's stderr is kept for the log.
const stderrCap = 64 << 10

// cappedBuffer keeps the first n bytes written to it and counts the rest.
type cappedBuffer struct {
	buf     bytes.Buffer
	n       int
	dropped int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := c.n - c.buf.Len()
	if room >= len(p) {
		return c.buf.Write(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

// Call runs the helper once with req on its stdin and returns its
// response. Cancelling ctx kills the helper. The helper's stderr goes to
// log, capped. An error is returned when the helper could not be found or
// run or gave no response; an op that failed is a response with Error set.
func Call(ctx context.Context, req *Request, log *slog.Logger) (*Response, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path, err := LookPath()
	if err != nil {
		return nil, err
	}
	req.Debug = log.Enabled(ctx, slog.LevelDebug)
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the %s request: %w", Executable, err)
	}
	var stdout bytes.Buffer
	stderr := &cappedBuffer{n: stderrCap}
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	logStderr(ctx, log, stderr, req.Op)
	log.Debug("ran "+Executable, "op", req.Op, "took", time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		return nil, fmt.Errorf("run %s %s: %w", Executable, req.Op, ctx.Err())
	}
	var resp Response
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("run %s %s: %w%s", Executable, req.Op, runErr, lastLine(stderr))
		}
		return nil, fmt.Errorf("read the %s %s response: %w", Executable, req.Op, err)
	}
	return &resp, nil
}

// logStderr sends the helper's stderr to log, one record per line.
func logStderr(ctx context.Context, log *slog.Logger, stderr *cappedBuffer, op string) {
	sc := bufio.NewScanner(bytes.NewReader(stderr.buf.Bytes()))
	sc.Buffer(make([]byte, 0, 4096), stderrCap)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			log.Log(ctx, slog.LevelWarn, Executable, "op", op, "stderr", line)
		}
	}
	if stderr.dropped > 0 {
		log.Log(ctx, slog.LevelWarn, Executable, "op", op, "stderr_dropped_bytes", stderr.dropped)
	}
}

// lastLine returns ": <the last stderr line>" or "".
func lastLine(stderr *cappedBuffer) string {
	b := bytes.TrimSpace(stderr.buf.Bytes())
	if len(b) == 0 {
		return ""
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return ": " + string(b)
}

// SecretMap resolves secrets from the values a [Request] carries: the
// helper's secret provider.
type SecretMap map[string]string

// Resolve returns the named secret, or an error wrapping
// reconciler.ErrSecretNotFound.
func (m SecretMap) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	v, ok := m[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("secret %s: %w", ref.Secret, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}
