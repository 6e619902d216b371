package secrets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fsgit/fsgit/reconciler"
)

// DefaultDir is where the files provider looks by default.
const DefaultDir = "/etc/fsgit/secrets"

// Files resolves the secret "mariadb/fs_user" to the content of the file
// <dir>/mariadb/fs_user, less one trailing newline.
//
// The directory must belong to the user fsgit runs as (root) and be closed
// to others (no permission bits for others, not writable by its group).
// Each file must be a regular file of the same owner that others cannot
// read or write and its group cannot write (0600 or 0640). Lookups cannot
// leave the directory, through ".." or a symbolic link.
type Files struct {
	dir string
}

var _ reconciler.SecretResolver = (*Files)(nil)

// NewFiles returns a provider reading secrets from dir.
func NewFiles(dir string) *Files { return &Files{dir: dir} }

// Resolve reads the secret's file. A missing file (or directory) returns a
// *NotFoundError; a file or directory that others could read is refused.
func (f *Files) Resolve(_ context.Context, ref reconciler.SecretRef) (reconciler.Secret, error) {
	name := ref.Secret
	if err := checkName(name); err != nil {
		return reconciler.Secret{}, err
	}
	path := filepath.Join(f.dir, filepath.FromSlash(name))
	fi, err := os.Stat(f.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return reconciler.Secret{}, &NotFoundError{Name: name, Looked: []string{path + " (no directory " + f.dir + ")"}}
	}
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	if err := checkPrivate(f.dir, fi, true); err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	defer root.Close()
	file, err := root.Open(filepath.FromSlash(name))
	if errors.Is(err, fs.ErrNotExist) {
		return reconciler.Secret{}, &NotFoundError{Name: name, Looked: []string{path}}
	}
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	defer file.Close()
	// Stat the opened file, not the path: what is checked is what is read.
	fi, err = file.Stat()
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %s is not a regular file", name, path)
	}
	if err := checkPrivate(path, fi, false); err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	b, err := readCapped(file, name)
	if err != nil {
		return reconciler.Secret{}, fmt.Errorf("resolve secret %s: %w", name, err)
	}
	return reconciler.NewSecret(name, trimNewline(b)), nil
}

// checkPrivate refuses a secret file or directory that others can reach:
// any permission for others, write for the group, or an owner other than
// the user fsgit runs as (or root).
func checkPrivate(path string, fi fs.FileInfo, dir bool) error {
	what := "file"
	if dir {
		what = "directory"
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 || perm&0o020 != 0 {
		return fmt.Errorf("refusing secret %s %s: mode %04o lets others read or change it; chmod it to %s",
			what, path, perm, map[bool]string{true: "0700", false: "0600"}[dir])
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
			return fmt.Errorf("refusing secret %s %s: owned by uid %d, not by root or the user fsgit runs as", what, path, uid)
		}
	}
	return nil
}
