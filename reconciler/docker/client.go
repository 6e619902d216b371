package docker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// DefaultHost is the daemon address used when a spec leaves dockerHost empty.
const DefaultHost = "unix:///var/run/docker.sock"

// callTimeout bounds one observation call to the daemon, so that a daemon
// that accepts connections but does not answer fails the resource instead of
// hanging the run.
const callTimeout = 30 * time.Second

// ErrDaemonUnreachable is wrapped by every error that comes from not
// reaching the Docker daemon at all (no socket, connection refused).
var ErrDaemonUnreachable = errors.New("docker daemon unreachable")

// clients keeps one Engine API client per daemon address. The zero value is
// ready to use; it is safe for concurrent use.
type clients struct {
	mu sync.Mutex
	m  map[string]*client.Client
}

// get returns the client for host ("" = DefaultHost), creating it on first
// use. Creating a client does not contact the daemon.
func (c *clients) get(host string) (*client.Client, error) {
	if host == "" {
		host = DefaultHost
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[host]; ok {
		return cl, nil
	}
	cl, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("creating docker client for %s: %w", host, err)
	}
	if c.m == nil {
		c.m = map[string]*client.Client{}
	}
	c.m[host] = cl
	return cl, nil
}

// close closes every client.
func (c *clients) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for h, cl := range c.m {
		if err := cl.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing docker client for %s: %w", h, err))
		}
	}
	c.m = nil
	return errors.Join(errs...)
}

// daemonErr turns an error from the client into one that says clearly when
// the daemon could not be reached at all.
func daemonErr(host string, err error) error {
	if err == nil {
		return nil
	}
	if host == "" {
		host = DefaultHost
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w at %s: %w", ErrDaemonUnreachable, host, err)
	}
	return err
}

// observeCtx bounds an observation call.
func observeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// listOnce runs list, bounded by observeCtx, once per run for what
// ("network", "volume", "container") on host; forgetList drops the result
// after a change.
func listOnce[T any](ctx context.Context, env *reconciler.Env, host, what string, list func(ctx context.Context) (T, error)) (T, error) {
	v, err := env.Cache.Once(listKey(what, host), func() (any, error) {
		octx, cancel := observeCtx(ctx)
		defer cancel()
		m, err := list(octx)
		if err != nil {
			return nil, fmt.Errorf("listing %ss: %w", what, daemonErr(host, err))
		}
		return m, nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// forgetList drops the run's listing of what on host.
func forgetList(env *reconciler.Env, what, host string) { env.Cache.Forget(listKey(what, host)) }

func listKey(what, host string) string { return "docker." + what + "/list/" + host }
