package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// Images built by scripts/build-images.sh.
const (
	standinImage = "fsgit.local/t2v-transformers:standin-1"
)

// testLabel marks every object a test creates, so that cleanup (and a
// human) can find leftovers: docker ps -a --filter label=fsgit-test.
const testLabel = "fsgit-test"

// dockerClient returns a client of the local daemon, or skips the test when
// there is none (fails under CI=true, where Docker must be there).
func dockerClient(tb testing.TB) *client.Client {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs the Docker Engine (-short)")
	}
	cl, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Ping(ctx); err != nil {
		cl.Close()
		missing(tb, "Docker Engine not reachable: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// requireImage skips (fails under CI=true) when a locally built image is
// missing.
func requireImage(tb testing.TB, cl *client.Client, ref string) {
	tb.Helper()
	if _, err := cl.ImageInspect(context.Background(), ref); err != nil {
		missing(tb, "image %s is missing (%v): build it with scripts/build-images.sh", ref, err)
	}
}

func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// uniqueName returns a name no other test run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// cleanupByLabel removes every container, network and volume labelled
// fsgit.test=value when the test ends.
func cleanupByLabel(tb testing.TB, cl *client.Client, value string) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx := context.Background()
		f := filters.NewArgs(filters.Arg("label", testLabel+"="+value))
		cs, _ := cl.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		for _, c := range cs {
			if err := cl.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				tb.Logf("cleanup: removing container %s: %v", c.ID, err)
			}
		}
		ns, _ := cl.NetworkList(ctx, network.ListOptions{Filters: f})
		for _, n := range ns {
			if err := cl.NetworkRemove(ctx, n.ID); err != nil {
				tb.Logf("cleanup: removing network %s: %v", n.Name, err)
			}
		}
		vs, _ := cl.VolumeList(ctx, volume.ListOptions{Filters: f})
		for _, v := range vs.Volumes {
			if err := cl.VolumeRemove(ctx, v.Name, true); err != nil {
				tb.Logf("cleanup: removing volume %s: %v", v.Name, err)
			}
		}
	})
}

// mapSecrets resolves secrets from a map; tests change it to rotate one.
type mapSecrets struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *mapSecrets) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[ref.Secret]
	if !ok {
		return reconciler.Secret{}, fmt.Errorf("secret %s: %w", ref.Secret, reconciler.ErrSecretNotFound)
	}
	return reconciler.NewSecret(ref.Secret, []byte(v)), nil
}

func (s *mapSecrets) set(name, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = v
}

// logBuffer collects log output so that tests can check it for secrets.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newEnv returns a fresh per-run environment.
func newEnv(secrets reconciler.SecretResolver, log io.Writer) *reconciler.Env {
	if log == nil {
		log = io.Discard
	}
	return &reconciler.Env{
		Secrets: secrets,
		Log:     slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cache:   reconciler.NewCache(),
	}
}

// resource builds a resource with the given spec.
func resource(tb testing.TB, id string, spec any) *reconciler.Resource {
	tb.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return &reconciler.Resource{ID: reconciler.ID(id), Mode: reconciler.ModeEnforce, Spec: b}
}

// apply plans r and applies the plan when it has changes, like one run of
// the engine over one resource; it returns the plan.
func apply(tb testing.TB, k reconciler.Kind, env *reconciler.Env, r *reconciler.Resource) *reconciler.Plan {
	tb.Helper()
	if err := k.Validate(r); err != nil {
		tb.Fatalf("validate %s: %v", r.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := k.Plan(ctx, env, r)
	if err != nil {
		tb.Fatalf("plan %s: %v", r.ID, err)
	}
	if p.HasChanges() {
		if p.MaxClass() == reconciler.Destructive && !r.AllowDestroy {
			tb.Fatalf("plan %s is destructive and the resource does not allow destroy: %s", r.ID, changeFields(p))
		}
		if p.Apply == nil {
			tb.Fatalf("plan %s has changes and no Apply: %+v", r.ID, p.Changes)
		}
		if err := p.Apply(ctx); err != nil {
			tb.Fatalf("apply %s: %v", r.ID, err)
		}
	}
	return p
}

// planOnly plans r in a fresh run.
func planOnly(tb testing.TB, k reconciler.Kind, r *reconciler.Resource, secrets reconciler.SecretResolver) *reconciler.Plan {
	tb.Helper()
	p, err := k.Plan(context.Background(), newEnv(secrets, nil), r)
	if err != nil {
		tb.Fatalf("plan %s: %v", r.ID, err)
	}
	return p
}

// inspect returns the container's ID and start time, as the engine says.
func inspect(tb testing.TB, cl *client.Client, name string) (id string, started string, running bool) {
	tb.Helper()
	c, err := cl.ContainerInspect(context.Background(), name)
	if err != nil {
		tb.Fatalf("inspecting %s: %v", name, err)
	}
	return c.ID, c.State.StartedAt, c.State.Running
}

// freePort returns a TCP port free on 127.0.0.1.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func changeFields(p *reconciler.Plan) string {
	var f []string
	for _, c := range p.Changes {
		f = append(f, c.Field+"("+c.Class.String()+")")
	}
	return strings.Join(f, " ")
}

func isDaemonUnreachable(err error) bool { return errors.Is(err, ErrDaemonUnreachable) }

// newBenchStack is a network and a minimal stand-in container for
// benchmarks.
func newBenchStack(b *testing.B) *stack {
	b.Helper()
	cl := dockerClient(b)
	requireImage(b, cl, standinImage)
	st := &stack{tag: uniqueName("b")}
	cleanupByLabel(b, cl, st.tag)
	st.netName, st.ctrName = "fsgit-bench-net-"+st.tag, "fsgit-bench-ctr-"+st.tag
	labels := map[string]string{testLabel: st.tag}
	st.net = resource(b, "docker.network:"+st.netName, map[string]any{
		"name": st.netName, "ensure": "present", "driver": "bridge", "internal": false, "labels": labels, "dockerHost": DefaultHost,
	})
	st.ctr = resource(b, "docker.container:"+st.ctrName, map[string]any{
		"name": st.ctrName, "ensure": "running", "image": standinImage, "command": []string{},
		"env": map[string]string{}, "secretEnv": map[string]any{}, "ports": []any{}, "mounts": []any{},
		"networks": []map[string]any{{"name": st.netName, "aliases": []string{}}},
		"restart":  "no", "labels": labels, "dockerHost": DefaultHost,
	})
	return st
}
