package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// File is the "file" kind: a regular file with optional content (with
// secret placeholders), owner, group and mode.
type File struct {
	// hashers holds *hasher values: a quiet run hashes every managed
	// file, and reusing the read buffer and the digest spares an
	// allocation of each per file.
	hashers sync.Pool
}

var (
	_ reconciler.KindOf[fileSpec]         = (*File)(nil)
	_ reconciler.SpecPruner[fileSpec]     = (*File)(nil)
	_ reconciler.SpecRememberer[fileSpec] = (*File)(nil)
)

// NewFile returns the file kind.
func NewFile() *reconciler.Typed[fileSpec] { return reconciler.NewTyped(&File{}) }

// Kinds returns the file, directory and symlink kinds.
func Kinds() []reconciler.Kind {
	return []reconciler.Kind{NewFile(), NewDirectory(), NewSymlink()}
}

// fileSpec is the spec of a file resource; see docs/kinds.md.
type fileSpec struct {
	Path   string            `json:"path"`
	Ensure reconciler.Ensure `json:"ensure"`
	// Content is nil when the content is not managed.
	Content *string `json:"content,omitempty"`
	// ContentSHA256 replaces content in the spec the node remembers
	// (RememberSpec): the hex SHA-256 of content without secrets. Only
	// PlanDelete sees it.
	ContentSHA256 string `json:"contentSha256,omitempty" remembered:"content"`
	// Secrets maps placeholder keys ({{secret:KEY}} in Content) to secrets.
	Secrets map[string]reconciler.SecretRef `json:"secrets,omitempty"`
	Owner   string                          `json:"owner"`
	Group   string                          `json:"group"`
	Mode    string                          `json:"mode"`
}

// placeholderRE matches a secret placeholder in file content.
var placeholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{secret:([A-Za-z_][A-Za-z0-9_]*)\}\}`) })

// Kind returns "file".
func (*File) Kind() string { return "file" }

// Check checks the path and what the schema does not: the remembered
// digest (never in a catalog), and that secrets come with content whose
// every placeholder names a declared secret. The mode and the secrets'
// keys and references are the schema's (#File).
func (*File) Check(r *reconciler.Resource, s *fileSpec) error {
	if err := checkCommon(r, &s.Path); err != nil {
		return err
	}
	if s.ContentSHA256 != "" && (s.Content != nil || len(s.ContentSHA256) != 64) {
		return fmt.Errorf("validate %s: contentSha256 is the remembered digest of content, 64 hex digits, never given with it", r.ID)
	}
	if len(s.Secrets) > 0 && s.Content == nil {
		return fmt.Errorf("validate %s: secrets given without content", r.ID)
	}
	if s.Content != nil && strings.Contains(*s.Content, "{{secret:") {
		for _, m := range placeholderRE().FindAllStringSubmatch(*s.Content, -1) {
			if _, ok := s.Secrets[m[1]]; !ok {
				return fmt.Errorf("validate %s: content uses {{secret:%s}}, which secrets does not declare", r.ID, m[1])
			}
		}
	}
	return nil
}

// checkCommon takes the path of a spec from the ID when not given and
// keeps it the ID's and inside the root (the test every write makes).
func checkCommon(r *reconciler.Resource, path *string) error {
	if *path == "" {
		*path = r.Name()
	}
	if *path != r.Name() {
		return fmt.Errorf("validate %s: path %q differs from the ID's name", r.ID, *path)
	}
	if _, err := (&reconciler.Env{}).Path(*path); err != nil {
		return fmt.Errorf("validate %s: %w", r.ID, err)
	}
	return nil
}

// RememberSpec returns the spec the node keeps in its inventory: content
// without secrets replaced by its SHA-256, which is all PlanDelete needs
// to tell an intact file (safe to delete) from a changed one. Content with
// secret placeholders is kept as its template (secret-free, and bounded
// by the inline limit): whether the file is intact can only be told by
// rendering it again, and no digest of the rendered file, which holds
// the secret, is ever stored.
//
// It also refuses content over the inline limit (the schema refuses it
// first, at its position): the engine calls it for every file of a
// catalog before the run.
func (*File) RememberSpec(r *reconciler.Resource, s *fileSpec) (json.RawMessage, error) {
	if s.Content != nil && len(*s.Content) > reconciler.MaxInline {
		return nil, fmt.Errorf("validate %s: content of %d bytes is over the inline limit of %d bytes (1 MiB): put large content in an artifact instead",
			r.ID, len(*s.Content), reconciler.MaxInline)
	}
	if s.Content == nil || len(s.Secrets) > 0 {
		return r.Spec, nil
	}
	m := *s // s is the run's decoded spec: left as it is
	m.ContentSHA256 = hex.EncodeToString(digest([]byte(*s.Content)))
	m.Content = nil
	return json.Marshal(&m)
}

// Plan observes the file and returns the changes that converge it.
func (k *File) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *fileSpec) (*reconciler.Plan, error) {
	if s.ContentSHA256 != "" {
		return nil, fmt.Errorf("plan %s: a remembered spec (contentSha256) cannot be applied", r.ID)
	}
	return k.plan(ctx, env, r, s, s.Ensure.Absent())
}

// PlanDelete returns the plan that removes a file that left the catalog:
// safe when its content was managed and is found intact, destructive
// otherwise.
func (k *File) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *fileSpec) (*reconciler.Plan, error) {
	return k.plan(ctx, env, r, s, true)
}

func (k *File) plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *fileSpec, absent bool) (*reconciler.Plan, error) {
	// Every look and every write goes through the run's filesystem, which
	// keeps them inside the root at the moment they happen.
	fsys, path := env.FS(), s.Path
	fi, err := lstat(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	if absent {
		return k.planAbsent(ctx, env, r, s, path, fi)
	}
	perms, err := ResolvePerms(env, s.Owner, s.Group, s.Mode)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	var want []byte
	if s.Content != nil {
		if want, err = render(ctx, env, s); err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
	}
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": typeName(fi)}, Warning: perms.Warning()}
	write := func(ctx context.Context, fi fs.FileInfo) error {
		data := want
		if len(s.Secrets) > 0 {
			// Resolved again at apply time: the value is the provider's now.
			var err error
			if data, err = render(ctx, env, s); err != nil {
				return err
			}
		}
		if err := MkdirParents(fsys, path); err != nil {
			return err
		}
		if fi != nil && !fi.Mode().IsRegular() {
			// A symlink or a special file is replaced by the rename; a
			// directory must go first. Neither lends its owner or mode.
			if fi.IsDir() {
				if err := RemoveAny(fsys, path, fi); err != nil {
					return err
				}
			}
			fi = nil
		}
		return replaceFile(env, path, perms.Merge(fi), func(w io.Writer) error {
			if _, err := w.Write(data); err != nil {
				return fmt.Errorf("write content: %w", err)
			}
			return nil
		})
	}

	if fi == nil || !fi.Mode().IsRegular() {
		plan.Action = reconciler.ActionCreate
		ch := reconciler.Change{Field: "ensure", Before: typeName(fi), After: "file"}
		if fi != nil {
			plan.Action = reconciler.ActionUpdate
			if ch.Class, err = replaceClass(fsys, path, fi); err != nil {
				return nil, fmt.Errorf("plan %s: %w", r.ID, err)
			}
		}
		plan.Changes = append(plan.Changes, ch)
		if fi == nil {
			missing, err := MissingParents(fsys, path)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", r.ID, err)
			}
			if len(missing) > 0 {
				plan.Changes = append(plan.Changes, reconciler.Change{Field: "parents", Before: "absent", After: strings.Join(missing, " ")})
			}
		}
		if s.Content != nil {
			plan.Changes = append(plan.Changes, contentChange(s, "", want))
		}
		plan.Apply = func(ctx context.Context) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := write(ctx, fi); err != nil {
				return fmt.Errorf("apply %s: %w", r.ID, err)
			}
			return nil
		}
		return plan, nil
	}

	if err := perms.Observe(env, fi, plan.Observed); err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	rewrite := false
	if s.Content != nil {
		sum, err := k.hashFile(fsys, path, fi.Size())
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", r.ID, err)
		}
		plan.Observed["sha256"] = observedDigest(s, sum, want)
		if fi.Size() != int64(len(want)) || !bytes.Equal(sum, digest(want)) {
			rewrite = true
			plan.Changes = append(plan.Changes, contentChange(s, hex.EncodeToString(sum), want))
		}
	}
	attrs, err := perms.Diff(env, fi)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	plan.Changes = append(plan.Changes, attrs...)
	if len(plan.Changes) == 0 {
		return plan, nil
	}
	plan.Action = reconciler.ActionUpdate
	plan.Apply = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if rewrite {
			// The new file gets every managed attribute at once.
			err = write(ctx, fi)
		} else {
			err = perms.Fix(fsys, path, fi)
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}

// planAbsent plans the removal of whatever is at path.
func (k *File) planAbsent(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *fileSpec, path string, fi fs.FileInfo) (*reconciler.Plan, error) {
	plan := &reconciler.Plan{Observed: map[string]string{"ensure": typeName(fi)}}
	if fi == nil {
		return plan, nil
	}
	class := reconciler.Destructive
	var err error
	if fi.Mode().IsRegular() {
		// Deleting loses nothing only when the content is ours and intact.
		switch {
		case s.ContentSHA256 != "":
			sum, err := k.hashFile(env.FS(), path, fi.Size())
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", r.ID, err)
			}
			plan.Observed["sha256"] = hex.EncodeToString(sum)
			if hex.EncodeToString(sum) == s.ContentSHA256 {
				class = reconciler.Safe
			}
		case s.Content != nil:
			want, err := render(ctx, env, s)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", r.ID, err)
			}
			sum, err := k.hashFile(env.FS(), path, fi.Size())
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", r.ID, err)
			}
			plan.Observed["sha256"] = observedDigest(s, sum, want)
			if bytes.Equal(sum, digest(want)) {
				class = reconciler.Safe
			}
		}
	} else if class, err = replaceClass(env.FS(), path, fi); err != nil {
		return nil, fmt.Errorf("plan %s: %w", r.ID, err)
	}
	plan.Action = reconciler.ActionDelete
	plan.Changes = []reconciler.Change{{Field: "ensure", Before: typeName(fi), After: "absent", Class: class}}
	plan.Apply = func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := RemoveAny(env.FS(), path, fi); err != nil {
			return fmt.Errorf("apply %s: %w", r.ID, err)
		}
		return nil
	}
	return plan, nil
}

// render returns the content with every secret placeholder replaced by the
// secret's value, resolved now.
func render(ctx context.Context, env *reconciler.Env, s *fileSpec) ([]byte, error) {
	content := *s.Content
	if len(s.Secrets) == 0 {
		return []byte(content), nil
	}
	if env.Secrets == nil {
		return nil, fmt.Errorf("render content: no secret provider for %s", secretNames(s))
	}
	idx := placeholderRE().FindAllStringSubmatchIndex(content, -1)
	values := map[string][]byte{}
	var out bytes.Buffer
	last := 0
	for _, m := range idx {
		key := content[m[2]:m[3]]
		v, ok := values[key]
		if !ok {
			sec, err := env.Secrets.Resolve(ctx, s.Secrets[key])
			if err != nil {
				return nil, fmt.Errorf("render content: %w", err)
			}
			v = sec.Reveal()
			values[key] = v
		}
		out.WriteString(content[last:m[0]])
		out.Write(v)
		last = m[1]
	}
	out.WriteString(content[last:])
	return out.Bytes(), nil
}

// secretNames lists the secrets a spec's content uses, sorted.
func secretNames(s *fileSpec) string {
	names := make([]string, 0, len(s.Secrets))
	for _, ref := range s.Secrets {
		names = append(names, ref.Secret)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// contentChange describes a content change for display. Content with
// secrets shows which secrets it holds, never a digest of it.
func contentChange(s *fileSpec, before string, want []byte) reconciler.Change {
	if len(s.Secrets) > 0 {
		after := "(contains secret " + secretNames(s) + ")"
		if before == "" {
			return reconciler.Change{Field: "content", After: after}
		}
		return reconciler.Change{Field: "content", Before: "(hidden)", After: after + ": changed"}
	}
	ch := reconciler.Change{Field: "content", After: "sha256:" + hex.EncodeToString(digest(want))[:12]}
	if before != "" {
		ch.Before = "sha256:" + before[:12]
	}
	return ch
}

// observedDigest is the content digest recorded in Observed (and so in
// the node's state). For content with secrets nothing derived from the
// file's bytes is recorded, since they hold the secret: when the file is
// what the spec renders, the digest of the template (secret-free, with its
// placeholders) stands for it; when it is not, a fixed marker does. Drift
// is noticed either way, because the two differ.
func observedDigest(s *fileSpec, sum, want []byte) string {
	if len(s.Secrets) > 0 {
		if bytes.Equal(sum, digest(want)) {
			return "template:" + hex.EncodeToString(digest([]byte(*s.Content)))
		}
		return "secret-content:differs"
	}
	return hex.EncodeToString(sum)
}

func digest(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// hasher is a read buffer and a digest that hashFile reuses.
type hasher struct {
	buf []byte
	h   hash.Hash
}

// maxKeptBuffer is the largest read buffer kept for reuse: a buffer for
// a file bigger than that is left to the collector.
const maxKeptBuffer = 64 << 10

// hashFile returns the sha256 of the regular file name. It reads into a
// buffer one byte larger than the size lstat gave (up to 256 KiB at a
// time): configuration files are small, and a quiet run of a thousand of
// them costs one open, one read and one close each (see
// rootfs.FS.ReadNoFollow). The buffer and the digest are taken from
// k.hashers and given back: only the bytes a read returned reach the
// digest (readShort hashes buf[:n]), so what an earlier file left in the
// buffer never counts in another's.
func (k *File) hashFile(fsys *rootfs.FS, name string, size int64) ([]byte, error) {
	hs, _ := k.hashers.Get().(*hasher)
	if hs == nil {
		hs = &hasher{h: sha256.New()}
	}
	n := int(min(max(size+1, 512), 256<<10))
	if cap(hs.buf) < n {
		hs.buf = make([]byte, n)
	}
	hs.h.Reset()
	err := fsys.ReadNoFollow(name, size, hs.buf[:n], hs.h)
	var sum []byte
	if err == nil {
		sum = hs.h.Sum(nil)
	}
	if cap(hs.buf) > maxKeptBuffer {
		hs.buf = nil
	}
	k.hashers.Put(hs)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", fsys.HostPath(name), err)
	}
	return sum, nil
}
