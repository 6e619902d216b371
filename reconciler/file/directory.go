package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// Directory is the "directory" kind: a directory with owner, group and
// mode. Removing it is safe only when it is empty.
type Directory struct{}

var (
	_ reconciler.KindOf[dirSpec]     = (*Directory)(nil)
	_ reconciler.SpecPruner[dirSpec] = (*Directory)(nil)
)

// NewDirectory returns the directory kind.
func NewDirectory() *reconciler.Typed[dirSpec] { return reconciler.NewTyped(&Directory{}) }

// dirSpec is the spec of a directory resource; see docs/kinds.md.
type dirSpec struct {
	Path   string            `json:"path"`
	Ensure reconciler.Ensure `json:"ensure"`
	Owner  string            `json:"owner"`
	Group  string            `json:"group"`
	Mode   string            `json:"mode"`
}

// Kind returns "directory".
func (*Directory) Kind() string { return "directory" }

// Check checks the path; the mode is the schema's (#Mode).
func (*Directory) Check(r *reconciler.Resource, s *dirSpec) error {
	return checkCommon(r, &s.Path)
}

// Plan observes the directory and returns the changes that converge it.
func (k *Directory) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *dirSpec) (*reconciler.Plan, error) {
	return k.plan(env, r, s, s.Ensure.Absent())
}

// PlanDelete returns the plan that removes a directory that left the
// catalog: safe when it is empty, destructive otherwise.
func (k *Directory) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *dirSpec) (*reconciler.Plan, error) {
	return k.plan(env, r, s, true)
}

func (k *Directory) plan(env *reconciler.Env, r *reconciler.Resource, s *dirSpec, absent bool) (*reconciler.Plan, error) {
	fsys, path := env.FS(), s.Path
	fi, err := lstat(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	if absent {
		return planRemove(fsys, r, path, fi)
	}
	perms, err := ResolvePerms(env, s.Owner, s.Group, s.Mode)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": typeName(fi)}, Warning: perms.Warning()}
	if fi != nil && fi.IsDir() {
		if err := perms.Observe(env, fi, plan.Observed); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		if plan.Changes, err = perms.Diff(env, fi); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		if len(plan.Changes) == 0 {
			return plan, nil
		}
		plan.Action = reconciler.ActionUpdate
		plan.Apply = func(ctx context.Context) error {
			if err := perms.Fix(fsys, path, fi); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
			return nil
		}
		return plan, nil
	}

	ch := reconciler.Change{Field: "ensure", Before: typeName(fi), After: "directory"}
	plan.Action = reconciler.ActionCreate
	if fi != nil {
		// A file in the way is lost when replaced; a symlink is not.
		plan.Action = reconciler.ActionUpdate
		if fi.Mode()&fs.ModeSymlink == 0 {
			ch.Class = reconciler.Destructive
		}
	}
	plan.Changes = []reconciler.Change{ch}
	if fi == nil {
		missing, err := MissingParents(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		if len(missing) > 0 {
			plan.Changes = append(plan.Changes, reconciler.Change{Field: "parents", Before: "absent", After: strings.Join(missing, " ")})
		}
	}
	plan.Apply = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := mkdir(fsys, path, fi, perms); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}

// mkdir creates the directory name (and its missing parents), replacing
// what fi says is in the way, and gives it perms.
func mkdir(fsys *rootfs.FS, name string, fi fs.FileInfo, perms Perms) error {
	if fi != nil {
		if err := RemoveAny(fsys, name, fi); err != nil {
			return err
		}
	}
	if err := MkdirParents(fsys, name); err != nil {
		return err
	}
	mode := uint32(0o755)
	if perms.HasMode {
		mode = perms.Mode
	}
	// Created 0700, then owned and moded, so that it is never open to
	// others before it has its owner.
	if err := fsys.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	created, err := fsys.Lstat(name)
	if err != nil {
		return fmt.Errorf("stat new directory: %w", err)
	}
	if !created.IsDir() {
		return fmt.Errorf("create directory: %s appeared as a %s meanwhile", fsys.HostPath(name), typeName(created))
	}
	p := perms
	p.Mode, p.HasMode = mode, true
	if err := p.Fix(fsys, name, created); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// planRemove plans the removal of whatever is at path: a symlink or an
// empty directory is safe to remove, anything else is destructive. The
// regular-file case of the file kind is classed by its caller.
func planRemove(fsys *rootfs.FS, r *reconciler.Resource, path string, fi fs.FileInfo) (*reconciler.Plan, error) {
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": typeName(fi)}}
	if fi == nil {
		return plan, nil
	}
	class, err := replaceClass(fsys, path, fi)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	plan.Action = reconciler.ActionDelete
	plan.Changes = []reconciler.Change{{Field: "ensure", Before: typeName(fi), After: "absent", Class: class}}
	plan.Apply = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := RemoveAny(fsys, path, fi); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}
