package docker

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// containerOp is one plan (and its apply) of one container resource.
type containerOp struct {
	k   *Container
	env *reconciler.Env
	cl  *client.Client
	r   *reconciler.Resource
	s   *ContainerSpec
	d   *desiredContainer
	img *image.InspectResponse // nil: the image is not present yet
}

func imageCacheKey(host, ref string) string { return "docker.image/inspect/" + host + "/" + ref }

// inspectImage inspects ref once per run.
func inspectImage(ctx context.Context, env *reconciler.Env, cl *client.Client, host, ref string) (*image.InspectResponse, error) {
	v, err := env.Cache.Once(imageCacheKey(host, ref), func() (any, error) {
		octx, cancel := observeCtx(ctx)
		defer cancel()
		img, err := cl.ImageInspect(octx, ref)
		if isNotFound(err) {
			return (*image.InspectResponse)(nil), nil
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting image %s: %w", ref, daemonErr(host, err))
		}
		return &img, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*image.InspectResponse), nil
}

func (op *containerOp) plan(ctx context.Context, cur *container.InspectResponse) (*reconciler.Plan, error) {
	s := op.s
	plan := &reconciler.Plan{Observed: map[string]string{"present": fmt.Sprint(cur != nil)}}
	if cur != nil {
		plan.Observed["id"] = shortID(cur.ID)
		plan.Observed["image"] = shortID(cur.Image)
		plan.Observed["state"] = cur.State.Status
		plan.Observed["specHash"] = cur.Config.Labels[LabelSpecHash]
	}
	if s.Ensure == "absent" {
		if cur == nil {
			return plan, nil
		}
		plan.Action = reconciler.ActionDelete
		plan.Changes = []reconciler.Change{{Field: "container", Before: s.Name, Class: reconciler.Disruptive}}
		plan.Apply = op.wrap(func(ctx context.Context) error { return op.remove(ctx, cur.ID) })
		return plan, nil
	}
	d, err := normalize(op.env, s)
	if err != nil {
		return nil, fmt.Errorf("planning container %s: %w", s.Name, err)
	}
	op.d = d
	if op.img, err = inspectImage(ctx, op.env, op.cl, s.DockerHost, s.Image); err != nil {
		return nil, err
	}
	if cur == nil {
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "container", After: s.Name + " (" + s.Image + ")", Class: reconciler.Safe}}
		plan.Apply = op.wrap(op.create)
		return plan, nil
	}
	if cur.State.Status == "removing" {
		// Someone is removing it (docker rm -f): let that finish, then
		// create it again.
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "container", Before: "removing", After: s.Name + " (" + s.Image + ")", Class: reconciler.Safe}}
		plan.Apply = op.wrap(func(ctx context.Context) error {
			if err := op.waitGone(ctx, cur.ID); err != nil {
				return err
			}
			return op.create(ctx)
		})
		return plan, nil
	}
	recreate, err := op.recreateChanges(ctx, cur)
	if err != nil {
		return nil, err
	}
	if len(recreate) > 0 {
		plan.Action = reconciler.ActionUpdate
		plan.Changes = recreate
		plan.Apply = op.wrap(func(ctx context.Context) error { return op.recreate(ctx, cur) })
		return plan, nil
	}
	inPlace, fix := op.inPlaceChanges(cur)
	if len(inPlace) > 0 {
		plan.Action = reconciler.ActionUpdate
		plan.Changes = inPlace
		plan.Apply = op.wrap(fix)
	}
	return plan, nil
}

// wrap marks the container busy (for Watch) and drops the run's cached
// container list after an apply.
func (op *containerOp) wrap(f func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		done := op.k.markBusy(op.r.ID)
		err := f(ctx)
		forgetList(op.env, "container", op.s.DockerHost)
		done(err)
		return err
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// recreateChanges lists the differences that only a recreate can fix.
func (op *containerOp) recreateChanges(ctx context.Context, cur *container.InspectResponse) ([]reconciler.Change, error) {
	d, s := op.d, op.s
	var out []reconciler.Change
	add := func(field, before, after string) {
		out = append(out, reconciler.Change{Field: field, Before: before, After: after, Class: reconciler.Disruptive})
	}
	if cur.State.Dead || cur.State.Status == "dead" {
		add("state", cur.State.Status, "running")
	}
	if op.img == nil {
		add("image", cur.Config.Image+" ("+shortID(cur.Image)+")", s.Image+" (not present yet)")
	} else if op.img.ID != cur.Image {
		add("image", cur.Config.Image+" ("+shortID(cur.Image)+")", s.Image+" ("+shortID(op.img.ID)+")")
	}
	// What the spec leaves out comes from the image the container was made
	// from: a change of image is the one change above, not also every
	// ENV, LABEL or CMD the new image declares differently.
	imgCfg, err := inspectImage(ctx, op.env, op.cl, s.DockerHost, cur.Image)
	if err != nil {
		return nil, err
	}
	var ic imageDefaults
	if imgCfg != nil && imgCfg.Config != nil {
		ic = imageDefaults{
			env: imgCfg.Config.Env, cmd: imgCfg.Config.Cmd, entrypoint: imgCfg.Config.Entrypoint,
			user: imgCfg.Config.User, labels: imgCfg.Config.Labels, volumes: imgCfg.Config.Volumes,
			health: imgCfg.Config.Healthcheck,
		}
	}
	cfg := cur.Config
	// entrypoint and command
	wantEP := d.Entrypoint
	if len(wantEP) == 0 {
		wantEP = ic.entrypoint
	}
	if !equalStrings(cfg.Entrypoint, wantEP) {
		add("entrypoint", quoteList(cfg.Entrypoint), quoteList(wantEP))
	}
	wantCmd := d.Command
	if len(wantCmd) == 0 && len(d.Entrypoint) == 0 {
		wantCmd = ic.cmd
	}
	if !equalStrings(cfg.Cmd, wantCmd) {
		add("command", quoteList(cfg.Cmd), quoteList(wantCmd))
	}
	// environment: image env, overridden by the spec
	want := envMap(ic.env)
	maps.Copy(want, d.Env)
	have := envMap(cfg.Env)
	// A key the container got from a secret (listed in its secret-hash
	// label) holds a secret value: never shown, even once the spec has
	// moved the key to env or dropped it.
	wasSecret := parseSecretHashes(cfg.Labels[LabelSecretHash])
	for _, key := range slices.Sorted(maps.Keys(mergeKeys(want, have))) {
		if ref, secret := d.SecretEnv[key]; secret {
			if _, ok := have[key]; !ok {
				add("env."+key, "(unset)", "("+ref.String()+")")
			}
			continue
		}
		w, wok := want[key]
		h, hok := have[key]
		switch {
		case wok && hok && w == h:
		case !hok:
			add("env."+key, "(unset)", w)
		case !wok:
			add("env."+key, "(set)", "(unset)")
		default:
			if _, ok := wasSecret[key]; ok {
				h = "(hidden: was secret)"
			}
			add("env."+key, h, w)
		}
	}
	// secret environment, by salted hash
	sc, err := op.secretChanges(ctx, cfg.Labels)
	if err != nil {
		return nil, err
	}
	out = append(out, sc...)
	// ports
	if h, w := observedPorts(cur.HostConfig), desiredPorts(d.Ports); h != w {
		add("ports", h, w)
	}
	// mounts
	if h, w := observedMounts(cur.Mounts, ic.volumes, d.Mounts), desiredMounts(d.Mounts); h != w {
		add("mounts", h, w)
	}
	if d.Hostname != "" && cfg.Hostname != d.Hostname {
		add("hostname", cfg.Hostname, d.Hostname)
	}
	wantUser := d.User
	if wantUser == "" {
		wantUser = ic.user
	}
	if cfg.User != wantUser {
		add("user", cfg.User, wantUser)
	}
	// labels: the image's, overridden by the spec
	wantLabels := userLabels(ic.labels)
	maps.Copy(wantLabels, d.Labels)
	out = append(out, labelChanges(wantLabels, cfg.Labels, reconciler.Disruptive)...)
	wantHealth := d.Healthcheck
	if wantHealth == nil {
		wantHealth = ic.health
	}
	if h, w := healthString(cfg.Healthcheck), healthString(wantHealth); h != w {
		add("healthcheck", h, w)
	}
	if len(out) == 0 && cfg.Labels[LabelSpecHash] != d.hash() {
		before := cfg.Labels[LabelSpecHash]
		if before == "" {
			before = "(not created by fsgit)"
		}
		add("labels."+LabelSpecHash, before, d.hash())
	}
	return out, nil
}

type imageDefaults struct {
	env, cmd, entrypoint []string
	user                 string
	labels               map[string]string
	volumes              map[string]struct{}
	health               *container.HealthConfig
}

// secretChanges compares the salted hashes of the resolved secret values
// with the ones stored on the container. Values are resolved here only to
// be hashed; they go nowhere else.
func (op *containerOp) secretChanges(ctx context.Context, labels map[string]string) ([]reconciler.Change, error) {
	if len(op.d.SecretEnv) == 0 {
		if labels[LabelSecretHash] != "" {
			return []reconciler.Change{{Field: "secretEnv", Before: "(set)", After: "(none)", Class: reconciler.Disruptive}}, nil
		}
		return nil, nil
	}
	salt := labels[LabelSecretSalt]
	stored := parseSecretHashes(labels[LabelSecretHash])
	vals, err := op.resolveSecrets(ctx)
	if err != nil {
		return nil, err
	}
	var out []reconciler.Change
	for _, key := range slices.Sorted(maps.Keys(op.d.SecretEnv)) {
		ref := op.d.SecretEnv[key]
		if salt == "" || stored[key] != secretHash(salt, key, vals[key].Reveal()) {
			out = append(out, reconciler.Change{Field: "secretEnv." + key, Before: "(differs)", After: "(" + ref.String() + ")", Class: reconciler.Disruptive})
		}
	}
	return out, nil
}

func (op *containerOp) resolveSecrets(ctx context.Context) (map[string]reconciler.Secret, error) {
	if len(op.d.SecretEnv) == 0 {
		return nil, nil
	}
	if op.env.Secrets == nil {
		return nil, fmt.Errorf("container %s has secretEnv but this run has no secret provider", op.s.Name)
	}
	out := make(map[string]reconciler.Secret, len(op.d.SecretEnv))
	for key, ref := range op.d.SecretEnv {
		v, err := op.env.Secrets.Resolve(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("resolving secretEnv %s of container %s: %w", key, op.s.Name, err)
		}
		out[key] = v
	}
	return out, nil
}

// secretHash is HMAC-SHA256(salt, key=value), truncated: enough to notice
// a rotated secret, and keyed so that the label says nothing of the value.
func secretHash(salt, key string, value []byte) string {
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func newSalt() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random salt: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// formatSecretHashes renders "KEY:hash,KEY2:hash" sorted by key.
func formatSecretHashes(salt string, vals map[string]reconciler.Secret) string {
	parts := make([]string, 0, len(vals))
	for _, key := range slices.Sorted(maps.Keys(vals)) {
		parts = append(parts, key+":"+secretHash(salt, key, vals[key].Reveal()))
	}
	return strings.Join(parts, ",")
}

func parseSecretHashes(s string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(p, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// inPlaceChanges lists what can be corrected without a recreate: the run
// state, the restart policy and the network attachments. fix applies them.
func (op *containerOp) inPlaceChanges(cur *container.InspectResponse) ([]reconciler.Change, func(context.Context) error) {
	d, s := op.d, op.s
	var changes []reconciler.Change
	var steps []func(context.Context) error
	rp := cur.HostConfig.RestartPolicy
	if rp.Name != d.Restart.Name || rp.MaximumRetryCount != d.Restart.MaximumRetryCount {
		changes = append(changes, reconciler.Change{Field: "restart", Before: restartString(rp), After: restartString(d.Restart), Class: reconciler.Safe})
		steps = append(steps, func(ctx context.Context) error {
			_, err := op.cl.ContainerUpdate(ctx, cur.ID, container.UpdateConfig{RestartPolicy: d.Restart})
			if err != nil {
				return fmt.Errorf("updating restart policy of container %s: %w", s.Name, daemonErr(s.DockerHost, err))
			}
			return nil
		})
	}
	nc, ns := op.networkChanges(cur)
	changes = append(changes, nc...)
	steps = append(steps, ns...)
	switch {
	case s.Ensure == "running" && cur.State.Paused:
		changes = append(changes, reconciler.Change{Field: "state", Before: "paused", After: "running", Class: reconciler.Safe})
		steps = append(steps, func(ctx context.Context) error { return op.unpause(ctx, cur.ID) })
	case s.Ensure == "running" && !cur.State.Running && !cur.State.Restarting:
		changes = append(changes, reconciler.Change{Field: "state", Before: cur.State.Status, After: "running", Class: reconciler.Safe})
		steps = append(steps, func(ctx context.Context) error { return op.start(ctx, cur.ID) })
	case s.Ensure == "stopped" && (cur.State.Running || cur.State.Restarting):
		changes = append(changes, reconciler.Change{Field: "state", Before: cur.State.Status, After: "stopped", Class: reconciler.Disruptive})
		steps = append(steps, func(ctx context.Context) error {
			if err := op.cl.ContainerStop(ctx, cur.ID, container.StopOptions{}); err != nil {
				return fmt.Errorf("stopping container %s: %w", s.Name, daemonErr(s.DockerHost, err))
			}
			return nil
		})
	}
	return changes, func(ctx context.Context) error {
		for _, step := range steps {
			if err := step(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

func restartString(p container.RestartPolicy) string {
	name := string(p.Name)
	if name == "" {
		name = "no"
	}
	if p.Name == container.RestartPolicyOnFailure && p.MaximumRetryCount > 0 {
		return fmt.Sprintf("%s:%d", name, p.MaximumRetryCount)
	}
	return name
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func equalStrings(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return slices.Equal(a, b)
}

func quoteList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func desiredPorts(ports []PortSpec) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = portKey(p)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func observedPorts(hc *container.HostConfig) string {
	var keys []string
	for port, binds := range hc.PortBindings {
		for _, b := range binds {
			ip := b.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			var host int
			_, _ = fmt.Sscan(b.HostPort, &host)
			keys = append(keys, portKey(PortSpec{Host: host, Container: port.Int(), Proto: port.Proto(), HostIP: ip}))
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func mountKey(m MountSpec) string {
	mode := "rw"
	if m.ReadOnly {
		mode = "ro"
	}
	return m.Type + ":" + m.Source + ":" + m.Target + ":" + mode
}

func desiredMounts(ms []MountSpec) string {
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = mountKey(m)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// observedMounts renders the container's mounts, leaving out the anonymous
// volumes Docker makes for the image's VOLUME declarations that the spec
// does not mount over.
func observedMounts(ms []container.MountPoint, imageVolumes map[string]struct{}, want []MountSpec) string {
	declared := map[string]bool{}
	for _, m := range want {
		declared[m.Target] = true
	}
	var keys []string
	for _, m := range ms {
		if _, anon := imageVolumes[m.Destination]; anon && !declared[m.Destination] && m.Type == "volume" {
			continue
		}
		src := m.Source
		if m.Type == "volume" {
			src = m.Name
		}
		keys = append(keys, mountKey(MountSpec{Type: string(m.Type), Source: src, Target: m.Destination, ReadOnly: !m.RW}))
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

func healthString(h *container.HealthConfig) string {
	if h == nil || len(h.Test) == 0 {
		return "(none)"
	}
	return fmt.Sprintf("%s every %s timeout %s retries %d start %s", quoteList(h.Test), h.Interval, h.Timeout, h.Retries, h.StartPeriod)
}
