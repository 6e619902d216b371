package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// ContainerSpec is the spec of a docker.container resource.
type ContainerSpec struct {
	// Name is the container's name.
	Name string `json:"name"`
	// Ensure is "running" (default), "stopped" or "absent".
	Ensure string `json:"ensure"`
	// Image is the image reference the container runs.
	Image string `json:"image"`
	// Command is the arguments after the entrypoint; empty = the image's.
	Command []string `json:"command"`
	// Entrypoint replaces the image's entrypoint when not empty.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Env is the plain environment.
	Env map[string]string `json:"env"`
	// SecretEnv is environment whose values come from secrets, resolved at
	// apply time and compared by a salted hash.
	SecretEnv map[string]reconciler.SecretRef `json:"secretEnv"`
	// Ports are published ports.
	Ports []PortSpec `json:"ports"`
	// Mounts are bind mounts (source is a host path, mapped under the
	// run's root) and named volumes.
	Mounts []MountSpec `json:"mounts"`
	// Networks are the networks the container joins, with its aliases on
	// each. Empty = Docker's default bridge.
	Networks []NetworkAttachment `json:"networks"`
	// Hostname, when set, is the container's host name.
	Hostname string `json:"hostname,omitempty"`
	// User, when set, runs the container as this user.
	User string `json:"user,omitempty"`
	// Restart is the restart policy: no, always, unless-stopped,
	// on-failure or on-failure:N.
	Restart string `json:"restart"`
	// Labels are the container's labels; fsgit adds its own.
	Labels map[string]string `json:"labels"`
	// Healthcheck, when set, replaces the image's health check.
	Healthcheck *HealthcheckSpec `json:"healthcheck,omitempty"`
	// DockerHost is the daemon address.
	DockerHost string `json:"dockerHost"`
}

// PortSpec publishes a container port on the host.
type PortSpec struct {
	// Host is the port on the host.
	Host int `json:"host"`
	// Container is the port inside the container.
	Container int `json:"container"`
	// Proto is "tcp" (default) or "udp".
	Proto string `json:"proto"`
	// HostIP is the host address to bind, "0.0.0.0" by default.
	HostIP string `json:"hostIP"`
}

// MountSpec mounts a host path ("bind") or a named volume ("volume").
type MountSpec struct {
	// Type is "bind" or "volume".
	Type string `json:"type"`
	// Source is an absolute host path (bind) or a volume name.
	Source string `json:"source"`
	// Target is the absolute path inside the container.
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"readOnly"`
}

// NetworkAttachment joins a network with aliases.
type NetworkAttachment struct {
	// Name is the network's name.
	Name string `json:"name"`
	// Aliases are the container's extra DNS names on that network.
	Aliases []string `json:"aliases"`
}

// HealthcheckSpec is a container health check. Durations are Go duration
// strings ("30s").
type HealthcheckSpec struct {
	// Test is the check, as Docker takes it: ["CMD", argv...] or
	// ["CMD-SHELL", "command"].
	Test []string `json:"test"`
	// Interval is the time between checks (default 30s).
	Interval string `json:"interval"`
	// Timeout bounds one check (default 30s).
	Timeout string `json:"timeout"`
	// Retries is how many failures in a row make it unhealthy (default 3).
	Retries int `json:"retries"`
	// StartPeriod is the grace period after start (default 0s).
	StartPeriod string `json:"startPeriod"`
}

// Container is the docker.container kind.
//
// Plan compares the real container (inspected every run, never trusted
// from a record) with the spec: image ID, command, entrypoint, environment,
// ports, mounts, user, hostname, labels and health check differences
// recreate the container (disruptive), and only they do. The restart policy
// and network attachments are corrected in place. A stopped container is
// started, a paused one unpaused, a removed one created again.
type Container struct {
	clients clients

	// EventBurst and EventEvery rate-limit [Container.Watch] per container:
	// at most EventBurst notifications at once, then one per EventEvery.
	// Zero means 3 and 10s.
	EventBurst int
	EventEvery time.Duration

	mu    sync.Mutex
	busy  map[reconciler.ID]time.Time // applying, or until this time
	hosts map[string]bool             // daemons of planned containers
	ids   map[reconciler.ID]bool      // planned container resources
	watch *watchState                 // set while Watch runs
}

var (
	_ reconciler.KindOf[ContainerSpec]        = (*Container)(nil)
	_ reconciler.SpecRefresher[ContainerSpec] = (*Container)(nil)
	_ reconciler.SpecPruner[ContainerSpec]    = (*Container)(nil)
)

// NewContainer returns the docker.container kind.
func NewContainer() *reconciler.Typed[ContainerSpec] { return reconciler.NewTyped(&Container{}) }

// Kind returns "docker.container".
func (*Container) Kind() string { return "docker.container" }

// Close closes the kind's Engine API clients.
func (k *Container) Close() error { return k.clients.close() }

// Check takes the name from the ID when the spec has none and checks what
// the schema (#DockerContainer) does not: a key in both env and
// secretEnv, a bind mount's source (a relative one would also match the
// schema's volume name), and fsgit's own labels.
func (*Container) Check(r *reconciler.Resource, s *ContainerSpec) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("validating %s: %s", r.ID, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		s.Name = r.Name()
	}
	for k := range s.SecretEnv {
		if _, dup := s.Env[k]; dup {
			return bad("%s is in both env and secretEnv", k)
		}
	}
	for _, m := range s.Mounts {
		if m.Type == "bind" && !strings.HasPrefix(m.Source, "/") {
			return bad("bind mount source %q is not absolute", m.Source)
		}
	}
	return checkLabels(r, s.Labels)
}

// desiredContainer is a spec normalized for comparison and hashing: bind
// sources mapped under the root, defaults filled in, lists sorted.
type desiredContainer struct {
	Image       string                          `json:"image"`
	Command     []string                        `json:"command,omitempty"`
	Entrypoint  []string                        `json:"entrypoint,omitempty"`
	Env         map[string]string               `json:"env,omitempty"`
	SecretEnv   map[string]reconciler.SecretRef `json:"secretEnv,omitempty"`
	Ports       []PortSpec                      `json:"ports,omitempty"`
	Mounts      []MountSpec                     `json:"mounts,omitempty"`
	Hostname    string                          `json:"hostname,omitempty"`
	User        string                          `json:"user,omitempty"`
	Labels      map[string]string               `json:"labels,omitempty"`
	Healthcheck *container.HealthConfig         `json:"healthcheck,omitempty"`

	// Corrected in place, so not part of the hash.
	Restart  container.RestartPolicy `json:"-"`
	Networks []NetworkAttachment     `json:"-"`
}

func normalize(env *reconciler.Env, s *ContainerSpec) (*desiredContainer, error) {
	d := &desiredContainer{
		Image:      s.Image,
		Command:    s.Command,
		Entrypoint: s.Entrypoint,
		Env:        s.Env,
		SecretEnv:  s.SecretEnv,
		Hostname:   s.Hostname,
		User:       s.User,
		Labels:     userLabels(s.Labels),
	}
	d.Ports = slices.Clone(s.Ports)
	slices.SortFunc(d.Ports, func(a, b PortSpec) int {
		return strings.Compare(portKey(a), portKey(b))
	})
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			p, err := env.Path(m.Source)
			if err != nil {
				return nil, fmt.Errorf("mapping bind mount source: %w", err)
			}
			// The daemon follows the source itself: it too must resolve
			// inside the root.
			if err := env.CheckResolved(p); err != nil {
				return nil, fmt.Errorf("mapping bind mount source: %w", err)
			}
			m.Source = p
		}
		d.Mounts = append(d.Mounts, m)
	}
	slices.SortFunc(d.Mounts, func(a, b MountSpec) int { return strings.Compare(a.Target, b.Target) })
	for _, n := range s.Networks {
		al := slices.Clone(n.Aliases)
		slices.Sort(al)
		d.Networks = append(d.Networks, NetworkAttachment{Name: n.Name, Aliases: slices.Compact(al)})
	}
	slices.SortFunc(d.Networks, func(a, b NetworkAttachment) int { return strings.Compare(a.Name, b.Name) })
	name, n, _ := strings.Cut(s.Restart, ":")
	d.Restart.Name = container.RestartPolicyMode(name)
	if n != "" {
		d.Restart.MaximumRetryCount, _ = strconv.Atoi(n)
	}
	if h := s.Healthcheck; h != nil {
		d.Healthcheck = &container.HealthConfig{
			Test:        h.Test,
			Interval:    parseDur(h.Interval, 30*time.Second),
			Timeout:     parseDur(h.Timeout, 30*time.Second),
			StartPeriod: parseDur(h.StartPeriod, 0),
			Retries:     h.Retries,
		}
		if d.Healthcheck.Retries == 0 {
			d.Healthcheck.Retries = 3
		}
	}
	return d, nil
}

func parseDur(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}

func portKey(p PortSpec) string {
	return fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.Host, p.Container, p.Proto)
}

// hash returns the spec hash stored in LabelSpecHash. It covers every field
// that a recreate changes, with secret references, never secret values.
func (d *desiredContainer) hash() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic("docker: marshalling a normalized spec: " + err.Error()) // plain data, cannot fail
	}
	sum := sha256.Sum256(b)
	return "v1-" + hex.EncodeToString(sum[:16])
}

// listContainers maps container names to IDs, once per run.
func listContainers(ctx context.Context, env *reconciler.Env, cl *client.Client, host string) (map[string]string, error) {
	return listOnce(ctx, env, host, "container", func(ctx context.Context) (map[string]string, error) {
		list, err := cl.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, c := range list {
			for _, n := range c.Names {
				m[strings.TrimPrefix(n, "/")] = c.ID
			}
		}
		return m, nil
	})
}

// Plan observes the container and diffs it against the spec.
func (k *Container) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ContainerSpec) (*reconciler.Plan, error) {
	k.remember(r.ID, s.DockerHost)
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	names, err := listContainers(ctx, env, cl, s.DockerHost)
	if err != nil {
		return nil, err
	}
	var cur *container.InspectResponse
	if id, ok := names[s.Name]; ok {
		octx, cancel := observeCtx(ctx)
		c, err := cl.ContainerInspect(octx, id)
		cancel()
		switch {
		case err == nil:
			cur = &c
		case !isNotFound(err):
			return nil, fmt.Errorf("inspecting container %s: %w", s.Name, daemonErr(s.DockerHost, err))
		}
	}
	op := &containerOp{k: k, env: env, cl: cl, r: r, s: s}
	return op.plan(ctx, cur)
}

// remember notes a planned container for Watch.
func (k *Container) remember(id reconciler.ID, host string) {
	if host == "" {
		host = DefaultHost
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ids == nil {
		k.ids = map[reconciler.ID]bool{}
		k.hosts = map[string]bool{}
	}
	k.ids[id] = true
	if !k.hosts[host] {
		k.hosts[host] = true
		if k.watch != nil {
			k.watch.addHost(host)
		}
	}
}

// known reports whether id is a container resource this kind planned.
func (k *Container) known(id reconciler.ID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ids[id]
}

// markBusy suppresses events about id while fsgit itself changes the
// container: events that happened before the returned func is called are
// fsgit's own echo. When the change failed, nothing is suppressed and a
// running Watch reports id again (rate-limited), since an event that came
// meanwhile may be what made it fail.
func (k *Container) markBusy(id reconciler.ID) func(err error) {
	k.mu.Lock()
	if k.busy == nil {
		k.busy = map[reconciler.ID]time.Time{}
	}
	k.busy[id] = time.Time{} // zero: in progress
	k.mu.Unlock()
	return func(err error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if err == nil {
			k.busy[id] = time.Now()
			return
		}
		delete(k.busy, id)
		if w := k.watch; w != nil {
			// Not from this goroutine: it may be inside onChange.
			go w.lim.notify(id)
		}
	}
}

// isEcho reports whether an event about id at time at was caused by fsgit:
// an apply was in progress, or finished after the event happened.
func (k *Container) isEcho(id reconciler.ID, at time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	end, ok := k.busy[id]
	return ok && (end.IsZero() || !at.After(end))
}

// Refresh restarts the container when something it depends on through a
// notify edge changed, unless it was just created or recreated.
func (k *Container) Refresh(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ContainerSpec, changed bool) (err error) {
	if changed || s.Ensure != "running" {
		return nil
	}
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return err
	}
	done := k.markBusy(r.ID)
	err = cl.ContainerRestart(ctx, s.Name, container.StopOptions{})
	done(err)
	forgetList(env, "container", s.DockerHost)
	if err != nil {
		return fmt.Errorf("restarting container %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	return nil
}

// PlanDelete stops and removes a container that left the catalog, if fsgit
// created it. Its volumes and bind-mounted data are kept.
func (k *Container) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ContainerSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	octx, cancel := observeCtx(ctx)
	defer cancel()
	list, err := cl.ContainerList(octx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelID+"="+string(r.ID)))})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", daemonErr(s.DockerHost, err))
	}
	if len(list) == 0 {
		return &reconciler.Plan{}, nil
	}
	return &reconciler.Plan{
		Action:  reconciler.ActionDelete,
		Changes: []reconciler.Change{{Field: "container", Before: s.Name, Class: reconciler.Disruptive}},
		Apply: func(ctx context.Context) (err error) {
			done := k.markBusy(r.ID)
			defer func() { done(err) }()
			defer forgetList(env, "container", s.DockerHost)
			for _, c := range list {
				if err := cl.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !isNotFound(err) {
					return fmt.Errorf("removing container %s: %w", s.Name, daemonErr(s.DockerHost, err))
				}
			}
			return nil
		},
	}, nil
}
