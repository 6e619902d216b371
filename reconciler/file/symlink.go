package file

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// Symlink is the "symlink" kind: a symbolic link with a literal target
// (absolute or relative; under a root, the target is written as given).
type Symlink struct{}

var (
	_ reconciler.KindOf[linkSpec]     = (*Symlink)(nil)
	_ reconciler.SpecPruner[linkSpec] = (*Symlink)(nil)
)

// NewSymlink returns the symlink kind.
func NewSymlink() *reconciler.Typed[linkSpec] { return reconciler.NewTyped(&Symlink{}) }

// linkSpec is the spec of a symlink resource; see docs/kinds.md.
type linkSpec struct {
	Path   string            `json:"path"`
	Target string            `json:"target"`
	Ensure reconciler.Ensure `json:"ensure"`
}

// Kind returns "symlink".
func (*Symlink) Kind() string { return "symlink" }

// Check checks the path, and that the target holds no NUL byte, which
// the schema (#Symlink) lets through and no file name can hold.
func (*Symlink) Check(r *reconciler.Resource, s *linkSpec) error {
	if err := checkCommon(r, &s.Path); err != nil {
		return err
	}
	if strings.IndexByte(s.Target, 0) >= 0 {
		return fmt.Errorf("validate %s: target holds a NUL byte", r.ID)
	}
	return nil
}

// Plan observes the link and returns the changes that converge it.
func (k *Symlink) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *linkSpec) (*reconciler.Plan, error) {
	return k.plan(env, r, s, s.Ensure.Absent())
}

// PlanDelete returns the plan that removes a symlink that left the catalog
// (safe: a link holds no data).
func (k *Symlink) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *linkSpec) (*reconciler.Plan, error) {
	return k.plan(env, r, s, true)
}

func (k *Symlink) plan(env *reconciler.Env, r *reconciler.Resource, s *linkSpec, absent bool) (*reconciler.Plan, error) {
	fsys, path := env.FS(), s.Path
	fi, err := lstat(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	if absent {
		return planRemove(fsys, r, path, fi)
	}
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": typeName(fi)}}
	var ch reconciler.Change
	switch {
	case fi == nil:
		plan.Action = reconciler.ActionCreate
		ch = reconciler.Change{Field: "ensure", Before: "absent", After: "symlink"}
	case fi.Mode()&fs.ModeSymlink != 0:
		cur, err := fsys.Readlink(path)
		if err != nil {
			return nil, fmt.Errorf("plan %s: read link: %w", r.ID, err)
		}
		plan.Observed["target"] = cur
		if cur == s.Target {
			return plan, nil
		}
		plan.Action = reconciler.ActionUpdate
		ch = reconciler.Change{Field: "target", Before: cur, After: s.Target}
	default:
		plan.Action = reconciler.ActionUpdate
		ch = reconciler.Change{Field: "ensure", Before: typeName(fi), After: "symlink"}
		if ch.Class, err = replaceClass(fsys, path, fi); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
	}
	plan.Changes = []reconciler.Change{ch}
	plan.Apply = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := link(fsys, path, s.Target, fi); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}

// link points name at target atomically: a new link under a temporary
// name renamed over name (see [atomicfile.SymlinkIn]). A directory in the
// way is removed first.
func link(fsys *rootfs.FS, name, target string, fi fs.FileInfo) error {
	if fi != nil && fi.IsDir() {
		if err := RemoveAny(fsys, name, fi); err != nil {
			return err
		}
	}
	if err := MkdirParents(fsys, name); err != nil {
		return err
	}
	dir, err := fsys.OpenDir(filepath.Dir(name))
	if err != nil {
		return fmt.Errorf("open the link's directory: %w", err)
	}
	defer dir.Close()
	return atomicfile.SymlinkIn(dir, filepath.Base(name), target)
}
