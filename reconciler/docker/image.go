package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
)

// pullStall aborts a pull that has printed nothing for this long: an
// unreachable registry must be an error, not a hang.
const pullStall = 2 * time.Minute

// Pull policies.
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
)

// ImageSpec is the spec of a docker.image resource.
type ImageSpec struct {
	// Ref is the image reference, [registry/]repo[:tag][@sha256:hex].
	Ref string `json:"ref"`
	// Digest, when set, is the local image ID (sha256:...) the image must
	// have, or one of its repository digests.
	Digest string `json:"digest,omitempty"`
	// Pull is "missing" (pull when absent), "always" (pull when the
	// registry has another digest) or "never" (must be present locally).
	Pull string `json:"pull"`
	// DockerHost is the daemon address.
	DockerHost string `json:"dockerHost"`
}

// Image is the docker.image kind: an image present on the daemon.
type Image struct {
	clients clients
}

var (
	_ reconciler.KindOf[ImageSpec]     = (*Image)(nil)
	_ reconciler.SpecPruner[ImageSpec] = (*Image)(nil)
	_ reconciler.Retainer              = (*Image)(nil)
)

// NewImage returns the docker.image kind.
func NewImage() *reconciler.Typed[ImageSpec] { return reconciler.NewTyped(&Image{}) }

// Kind returns "docker.image".
func (*Image) Kind() string { return "docker.image" }

// Close closes the kind's Engine API clients.
func (k *Image) Close() error { return k.clients.close() }

// imageMatches reports whether the local image is the one the digest pins.
func imageMatches(img image.InspectResponse, digest string) bool {
	if digest == "" || img.ID == digest {
		return true
	}
	for _, rd := range img.RepoDigests {
		if strings.HasSuffix(rd, "@"+digest) {
			return true
		}
	}
	return false
}

// Plan inspects the image locally (and, for pull "always", asks the
// registry for its current digest).
func (k *Image) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ImageSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	octx, cancel := observeCtx(ctx)
	defer cancel()
	img, err := cl.ImageInspect(octx, s.Ref)
	present := err == nil
	if err != nil && !cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("inspecting image %s: %w", s.Ref, daemonErr(s.DockerHost, err))
	}
	plan := &reconciler.Plan{Observed: map[string]string{"present": fmt.Sprint(present)}}
	if present {
		plan.Observed["id"] = img.ID
	}
	pull := func(ctx context.Context) error {
		// The container kind caches what this ref resolves to in the run.
		defer env.Cache.Forget(imageCacheKey(s.DockerHost, s.Ref))
		progress := env.StartProgress(r.ID, "pull "+s.Ref)
		defer progress.Finish()
		if err := pullImage(ctx, cl, s.Ref, progress); err != nil {
			return fmt.Errorf("pulling image %s: %w", s.Ref, daemonErr(s.DockerHost, err))
		}
		return checkDigest(ctx, cl, s)
	}
	switch {
	case !present && s.Pull == PullNever:
		return nil, fmt.Errorf("image %s is not present on the daemon and pull is \"never\": build or load it on this node first", s.Ref)
	case !present:
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "image", After: "pull " + s.Ref, Class: reconciler.Safe}}
		plan.Apply = pull
	case !imageMatches(img, s.Digest) && s.Pull == PullNever:
		return nil, fmt.Errorf("image %s is %s, not the pinned %s, and pull is \"never\"", s.Ref, img.ID, s.Digest)
	case !imageMatches(img, s.Digest):
		plan.Action = reconciler.ActionUpdate
		plan.Changes = []reconciler.Change{{Field: "digest", Before: img.ID, After: s.Digest, Class: reconciler.Safe}}
		plan.Apply = pull
	case s.Pull == PullAlways:
		remote, err := cl.DistributionInspect(octx, s.Ref, "")
		if err != nil {
			return nil, fmt.Errorf("asking the registry for the digest of %s (pull \"always\"): %w", s.Ref, daemonErr(s.DockerHost, err))
		}
		if !imageMatches(img, string(remote.Descriptor.Digest)) {
			plan.Action = reconciler.ActionUpdate
			plan.Changes = []reconciler.Change{{Field: "digest", Before: img.ID, After: string(remote.Descriptor.Digest), Class: reconciler.Safe}}
			plan.Apply = pull
		}
	}
	return plan, nil
}

// checkDigest verifies a pulled image against the pin.
func checkDigest(ctx context.Context, cl *client.Client, s *ImageSpec) error {
	if s.Digest == "" {
		return nil
	}
	img, err := cl.ImageInspect(ctx, s.Ref)
	if err != nil {
		return fmt.Errorf("inspecting pulled image %s: %w", s.Ref, err)
	}
	if !imageMatches(img, s.Digest) {
		return fmt.Errorf("pulled image %s is %s, not the pinned %s", s.Ref, img.ID, s.Digest)
	}
	return nil
}

// pullMessage is one line of the daemon's pull progress stream.
type pullMessage struct {
	Status string `json:"status"`
	// ID is the layer the status is about, when it is about one.
	ID             string `json:"id"`
	ProgressDetail struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// pullImage pulls ref and reads the progress stream to its end, reporting
// the bytes downloaded over every layer seen so far and the last layer's
// status. The daemon reports a failed pull inside the stream, not as a
// status code; a stream that stalls for pullStall is abandoned.
func pullImage(ctx context.Context, cl *client.Client, ref string, progress *reconciler.Progress) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rc, err := cl.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	stall := time.AfterFunc(pullStall, func() {
		cancel(fmt.Errorf("no progress from the registry for %s", pullStall))
	})
	defer stall.Stop()
	dec := json.NewDecoder(rc)
	layers := &pullLayers{}
	for {
		var m pullMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return fmt.Errorf("reading pull progress: %w", err)
		}
		stall.Reset(pullStall)
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		layers.add(&m, progress)
	}
}

// pullLayers sums a pull's layers: bytes downloaded of their sizes.
type pullLayers struct {
	done, total map[string]int64
}

// add counts m and reports the sums with m's status.
func (l *pullLayers) add(m *pullMessage, progress *reconciler.Progress) {
	if l.done == nil {
		l.done, l.total = map[string]int64{}, map[string]int64{}
	}
	switch {
	case m.ID != "" && m.Status == "Downloading" && m.ProgressDetail.Total > 0:
		l.done[m.ID], l.total[m.ID] = m.ProgressDetail.Current, m.ProgressDetail.Total
	case m.ID != "" && (m.Status == "Download complete" || m.Status == "Already exists" || m.Status == "Pull complete"):
		if t, ok := l.total[m.ID]; ok {
			l.done[m.ID] = t
		}
	}
	var done, total int64
	for id, t := range l.total {
		done, total = done+l.done[id], total+t
	}
	msg := m.Status
	if m.ID != "" {
		msg = m.ID + ": " + m.Status
	}
	progress.Update(done, total, reconciler.UnitBytes, msg)
}

// Retain keeps an image that left the catalog while the node's recent
// catalogs reference it: it is what a rollback runs.
func (*Image) Retain(*reconciler.Resource) bool { return true }

// PlanDelete removes the image's tag when the resource left the catalog.
//
// An image that a container uses (running or stopped) is kept: it is not
// planned for deletion, in a run or in noop, and stays in the inventory
// until no container uses it. Removing an image that cannot be had again
// (pull "never", or a registry that does not answer for it) is
// destructive: it removes the only way back to that version, so it needs
// allowDestroy. The engine keeps images for rollback while the node's
// last applied catalogs reference them ([reconciler.Retainer]).
func (k *Image) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ImageSpec) (*reconciler.Plan, error) {
	cl, err := k.clients.get(s.DockerHost)
	if err != nil {
		return nil, err
	}
	octx, cancel := observeCtx(ctx)
	defer cancel()
	img, err := cl.ImageInspect(octx, s.Ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return &reconciler.Plan{}, nil
		}
		return nil, fmt.Errorf("inspecting image %s: %w", s.Ref, daemonErr(s.DockerHost, err))
	}
	// A container uses the image when it runs it and, if the image has
	// other names, was created by this one: removing one name of several
	// leaves the image to the containers created by another.
	users, err := containersUsing(octx, cl, filters.NewArgs(), func(c container.Summary) bool {
		return c.ImageID == img.ID && (len(img.RepoTags) <= 1 || c.Image == s.Ref)
	})
	if err != nil {
		return nil, daemonErr(s.DockerHost, err)
	}
	if len(users) > 0 {
		return nil, inUse("image "+s.Ref, users)
	}
	change := reconciler.Change{Field: "image", Before: s.Ref, Class: reconciler.Safe}
	if why := cannotPullAgain(octx, cl, s); why != "" {
		change.After = "(deleted: " + why + ")"
		change.Class = reconciler.Destructive
	}
	return &reconciler.Plan{
		Action:   reconciler.ActionDelete,
		Changes:  []reconciler.Change{change},
		Observed: map[string]string{"present": "true", "id": img.ID},
		Apply: func(ctx context.Context) error {
			if _, err := cl.ImageRemove(ctx, s.Ref, image.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("removing image %s: %w", s.Ref, daemonErr(s.DockerHost, err))
			}
			return nil
		},
	}, nil
}

// cannotPullAgain says why the image could not be pulled again once
// deleted, or "" when the registry has it.
func cannotPullAgain(ctx context.Context, cl *client.Client, s *ImageSpec) string {
	if s.Pull == PullNever {
		return `pull is "never": it cannot be had again on this node`
	}
	if _, err := cl.DistributionInspect(ctx, s.Ref, ""); err != nil {
		return "the registry does not answer for it: it may not be had again"
	}
	return ""
}
