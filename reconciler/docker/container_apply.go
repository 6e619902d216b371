package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/fsgit/fsgit/reconciler"
)

// create makes the container from the spec, joins its networks and starts
// it (unless ensure is stopped).
func (op *containerOp) create(ctx context.Context) error {
	s, d := op.s, op.d
	if _, err := op.cl.ImageInspect(ctx, s.Image); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("creating container %s: image %s is not present on the daemon (declare docker.image:%s and require it)", s.Name, s.Image, s.Image)
		}
		return fmt.Errorf("creating container %s: inspecting image %s: %w", s.Name, s.Image, daemonErr(s.DockerHost, err))
	}
	secrets, err := op.resolveSecrets(ctx)
	if err != nil {
		return err
	}
	labels := maps.Clone(d.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManaged] = "true"
	labels[LabelID] = string(op.r.ID)
	labels[LabelSpecHash] = d.hash()
	if len(secrets) > 0 {
		salt, err := newSalt()
		if err != nil {
			return err
		}
		labels[LabelSecretSalt] = salt
		labels[LabelSecretHash] = formatSecretHashes(salt, secrets)
	}
	env := make([]string, 0, len(d.Env)+len(secrets))
	for _, k := range slices.Sorted(maps.Keys(d.Env)) {
		env = append(env, k+"="+d.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		env = append(env, k+"="+string(secrets[k].Reveal()))
	}
	cfg := &container.Config{
		Image:       s.Image,
		Cmd:         d.Command,
		Entrypoint:  d.Entrypoint,
		Env:         env,
		Labels:      labels,
		Hostname:    d.Hostname,
		User:        d.User,
		Healthcheck: d.Healthcheck,
	}
	hc := &container.HostConfig{RestartPolicy: d.Restart}
	if len(d.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range d.Ports {
			port := nat.Port(strconv.Itoa(p.Container) + "/" + p.Proto)
			cfg.ExposedPorts[port] = struct{}{}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.Host)})
		}
	}
	for _, m := range d.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	var netCfg *network.NetworkingConfig
	if len(d.Networks) > 0 {
		// API 1.41 takes one network at create; the others are connected
		// before the container starts.
		first := d.Networks[0]
		hc.NetworkMode = container.NetworkMode(first.Name)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			first.Name: {Aliases: first.Aliases},
		}}
	}
	created, err := op.cl.ContainerCreate(ctx, cfg, hc, netCfg, nil, s.Name)
	if err != nil {
		return fmt.Errorf("creating container %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	for _, n := range d.Networks[min(1, len(d.Networks)):] {
		if err := op.cl.NetworkConnect(ctx, n.Name, created.ID, &network.EndpointSettings{Aliases: n.Aliases}); err != nil {
			return fmt.Errorf("connecting container %s to network %s: %w", s.Name, n.Name, daemonErr(s.DockerHost, err))
		}
	}
	if s.Ensure == "running" {
		return op.start(ctx, created.ID)
	}
	return nil
}

// start starts the container, checks that it did not exit at once, and
// waits for it to be healthy when it has a health check.
func (op *containerOp) start(ctx context.Context, id string) error {
	s := op.s
	if err := op.cl.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	c, err := op.cl.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspecting started container %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	if !c.State.Running && !c.State.Restarting && c.State.ExitCode != 0 {
		return fmt.Errorf("container %s exited with code %d right after it started", s.Name, c.State.ExitCode)
	}
	if c.Config.Healthcheck == nil || len(c.Config.Healthcheck.Test) == 0 || c.Config.Healthcheck.Test[0] == "NONE" {
		return nil
	}
	return op.waitHealthy(ctx, id, c.Config.Healthcheck)
}

// unpauseWait bounds how long unpause waits for the daemon to record a
// container as no longer paused.
const unpauseWait = 10 * time.Second

// unpause resumes a paused container and returns once the daemon says it
// is no longer paused. The daemon's unpause returns when containerd has
// resumed the container's processes (daemon/unpause.go: Resume, nothing
// more); the container's Paused flag is cleared when containerd's
// "resumed" event comes back. An inspect just after the answer may still
// say paused, and so would the engine's verify of the apply: CI saw
// TestContainer_Drift's plan right after the correction still have
// "state" once, under the load of the whole test suite (24 runs alone did
// not show it).
func (op *containerOp) unpause(ctx context.Context, id string) error {
	s := op.s
	if err := op.cl.ContainerUnpause(ctx, id); err != nil {
		return fmt.Errorf("unpausing container %s: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	ctx, cancel := context.WithTimeout(ctx, unpauseWait)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		c, err := op.cl.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspecting unpaused container %s: %w", s.Name, daemonErr(s.DockerHost, err))
		}
		if !c.State.Paused {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s: the daemon still says paused after the unpause: %w", s.Name, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// waitHealthy waits until Docker reports the container healthy, for at
// most as long as its health check may take to pass.
func (op *containerOp) waitHealthy(ctx context.Context, id string, h *container.HealthConfig) error {
	interval, timeout := h.Interval, h.Timeout
	if interval == 0 {
		interval = 30 * time.Second
	}
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	retries := max(h.Retries, 3)
	limit := h.StartPeriod + time.Duration(retries+1)*(interval+timeout)
	ctx, cancel := context.WithTimeout(ctx, min(limit, 10*time.Minute))
	defer cancel()
	tick := time.NewTicker(min(interval/4+50*time.Millisecond, time.Second))
	defer tick.Stop()
	for {
		c, err := op.cl.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("waiting for container %s to be healthy: %w", op.s.Name, daemonErr(op.s.DockerHost, err))
		}
		if c.State.Health != nil {
			switch c.State.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return fmt.Errorf("container %s is unhealthy after starting", op.s.Name)
			}
		}
		if !c.State.Running && !c.State.Restarting {
			return fmt.Errorf("container %s stopped while waiting for it to be healthy (exit code %d)", op.s.Name, c.State.ExitCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for container %s to be healthy: %w", op.s.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// recreate replaces cur with a container made from the spec. The old one
// is stopped and renamed aside first; if the new one cannot be created or
// started, the old one is put back and started again.
func (op *containerOp) recreate(ctx context.Context, cur *container.InspectResponse) error {
	s := op.s
	aside := s.Name + "-fsgit-old-" + shortID(cur.ID)
	if cur.State.Running || cur.State.Restarting || cur.State.Paused {
		if err := op.cl.ContainerStop(ctx, cur.ID, container.StopOptions{}); err != nil {
			return fmt.Errorf("stopping container %s to recreate it: %w", s.Name, daemonErr(s.DockerHost, err))
		}
	}
	if err := op.cl.ContainerRename(ctx, cur.ID, aside); err != nil {
		return fmt.Errorf("renaming container %s aside to recreate it: %w", s.Name, daemonErr(s.DockerHost, err))
	}
	restore := func(cause error) error {
		// Use a fresh context: ctx may be the reason we are here.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var errs []error
		if c, err := op.cl.ContainerInspect(rctx, s.Name); err == nil {
			errs = append(errs, op.cl.ContainerRemove(rctx, c.ID, container.RemoveOptions{Force: true}))
		}
		errs = append(errs, op.cl.ContainerRename(rctx, cur.ID, s.Name))
		if s.Ensure == "running" {
			errs = append(errs, op.cl.ContainerStart(rctx, cur.ID, container.StartOptions{}))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%w (and putting the old container back failed: %w)", cause, err)
		}
		return fmt.Errorf("%w (the old container was put back)", cause)
	}
	if err := op.create(ctx); err != nil {
		return restore(err)
	}
	if err := op.cl.ContainerRemove(ctx, cur.ID, container.RemoveOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing the replaced container %s (%s): %w", aside, shortID(cur.ID), daemonErr(s.DockerHost, err))
	}
	return nil
}

// waitGone waits (at most a minute) for a container that is being removed
// to be gone.
func (op *containerOp) waitGone(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := op.cl.ContainerInspect(ctx, id)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for container %s to be removed: %w", op.s.Name, daemonErr(op.s.DockerHost, err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for container %s to be removed: %w", op.s.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// remove stops and removes the container (ensure absent).
func (op *containerOp) remove(ctx context.Context, id string) error {
	if err := op.cl.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing container %s: %w", op.s.Name, daemonErr(op.s.DockerHost, err))
	}
	return nil
}

// networkChanges compares the container's network attachments with the
// spec: a missing one is connected (safe); one with other aliases is
// reconnected, and one the spec does not list is disconnected (both
// disruptive: connections through it drop).
func (op *containerOp) networkChanges(cur *container.InspectResponse) ([]reconciler.Change, []func(context.Context) error) {
	s := op.s
	want := map[string][]string{}
	for _, n := range op.d.Networks {
		want[n.Name] = n.Aliases
	}
	have := map[string][]string{}
	for name, ep := range cur.NetworkSettings.Networks {
		al := withoutShortID(ep.Aliases, cur.ID)
		slices.Sort(al)
		have[name] = slices.Compact(al)
	}
	if len(want) == 0 {
		// Docker's default network; nothing declared, nothing enforced.
		return nil, nil
	}
	var changes []reconciler.Change
	var steps []func(context.Context) error
	connect := func(name string, aliases []string) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := op.cl.NetworkConnect(ctx, name, cur.ID, &network.EndpointSettings{Aliases: aliases}); err != nil {
				return fmt.Errorf("connecting container %s to network %s: %w", s.Name, name, daemonErr(s.DockerHost, err))
			}
			return nil
		}
	}
	disconnect := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := op.cl.NetworkDisconnect(ctx, name, cur.ID, true); err != nil && !isNotFound(err) {
				return fmt.Errorf("disconnecting container %s from network %s: %w", s.Name, name, daemonErr(s.DockerHost, err))
			}
			return nil
		}
	}
	for _, name := range slices.Sorted(maps.Keys(mergeKeysAny(want, have))) {
		w, wok := want[name]
		h, hok := have[name]
		switch {
		case wok && !hok:
			changes = append(changes, reconciler.Change{Field: "networks." + name, Before: "(not connected)", After: aliasString(w), Class: reconciler.Safe})
			steps = append(steps, connect(name, w))
		case !wok && hok:
			changes = append(changes, reconciler.Change{Field: "networks." + name, Before: aliasString(h), After: "(not connected)", Class: reconciler.Disruptive})
			steps = append(steps, disconnect(name))
		case !aliasSubset(w, h):
			changes = append(changes, reconciler.Change{Field: "networks." + name, Before: aliasString(h), After: aliasString(w), Class: reconciler.Disruptive})
			steps = append(steps, disconnect(name), connect(name, w))
		}
	}
	return changes, steps
}

// aliasSubset reports whether every wanted alias is there. Docker may add
// aliases of its own (the container's name on some versions).
func aliasSubset(want, have []string) bool {
	for _, a := range want {
		if !slices.Contains(have, a) {
			return false
		}
	}
	return true
}

func aliasString(al []string) string {
	if len(al) == 0 {
		return "connected"
	}
	return "aliases " + quoteList(al)
}

func mergeKeysAny(a, b map[string][]string) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}
