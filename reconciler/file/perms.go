package file

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// Perms is the ownership and permission bits a path should have. A field
// that is not managed (UID or GID -1, HasMode false) is left as found.
type Perms struct {
	// Owner and Group are the names as written in the spec, for display.
	Owner, Group string
	// UID and GID are the resolved IDs, -1 when not managed.
	UID, GID int
	// Mode holds the permission bits and the setuid, setgid and sticky
	// bits (07777), when HasMode.
	Mode    uint32
	HasMode bool
	// Unresolved lists "owner NAME" / "group NAME" that could not be
	// resolved under --root and are therefore not managed.
	Unresolved []string
}

// ParseMode parses an octal mode of 3 or 4 digits, as in "0644" or "1777".
func ParseMode(s string) (uint32, error) {
	if len(s) < 3 || len(s) > 4 {
		return 0, fmt.Errorf("parse mode %q: want 3 or 4 octal digits", s)
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("parse mode %q: %w", s, err)
	}
	return uint32(m), nil
}

// ResolvePerms resolves owner and group names through the run's accounts
// (the root's etc/passwd and etc/group, else the host's) and parses mode.
// An empty owner, group or mode is not managed.
func ResolvePerms(env *reconciler.Env, owner, group, mode string) (Perms, error) {
	p := Perms{Owner: owner, Group: group, UID: -1, GID: -1}
	if mode != "" {
		m, err := ParseMode(mode)
		if err != nil {
			return p, err
		}
		p.Mode, p.HasMode = m, true
	}
	if owner == "" && group == "" {
		return p, nil
	}
	acc, err := accountsFor(env)
	if err != nil {
		return p, err
	}
	if owner != "" {
		if p.UID, err = acc.uid(owner); err != nil {
			if env.Root == "" {
				return p, err
			}
			p.UID, p.Unresolved = -1, append(p.Unresolved, "owner "+owner)
		}
	}
	if group != "" {
		if p.GID, err = acc.gid(group); err != nil {
			if env.Root == "" {
				return p, err
			}
			p.GID, p.Unresolved = -1, append(p.Unresolved, "group "+group)
		}
	}
	return p, nil
}

// Warning says which names could not be resolved under --root, where
// accounts are not managed (the account kinds skip there): ownership by
// those names is left as found rather than failing the file, and the
// report says so. It is "" when everything resolved.
func (p Perms) Warning() string {
	if len(p.Unresolved) == 0 {
		return ""
	}
	verb := " is"
	if len(p.Unresolved) > 1 {
		verb = " are"
	}
	return "under --root, " + strings.Join(p.Unresolved, " and ") + verb +
		" unknown (accounts are not managed under a root): ownership left as found"
}

// statOf returns the raw stat of fi, which must come from os.Lstat or
// os.Stat on Linux.
func statOf(fi fs.FileInfo) *syscall.Stat_t {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return &syscall.Stat_t{}
	}
	return st
}

// modeBits returns fi's permission, setuid, setgid and sticky bits (07777).
func modeBits(fi fs.FileInfo) uint32 { return statOf(fi).Mode & 0o7777 }

// FormatMode formats mode bits as four octal digits.
func FormatMode(m uint32) string { return fmt.Sprintf("%04o", m) }

// Diff returns one change per managed field (owner, group, mode) that fi
// does not have. Every such change is safe.
func (p Perms) Diff(env *reconciler.Env, fi fs.FileInfo) ([]reconciler.Change, error) {
	st := statOf(fi)
	var out []reconciler.Change
	if p.UID >= 0 && int(st.Uid) != p.UID {
		acc, err := accountsFor(env)
		if err != nil {
			return nil, err
		}
		out = append(out, reconciler.Change{Field: "owner", Before: acc.userName(int(st.Uid)), After: p.Owner})
	}
	if p.GID >= 0 && int(st.Gid) != p.GID {
		acc, err := accountsFor(env)
		if err != nil {
			return nil, err
		}
		out = append(out, reconciler.Change{Field: "group", Before: acc.groupName(int(st.Gid)), After: p.Group})
	}
	if p.HasMode && modeBits(fi) != p.Mode {
		out = append(out, reconciler.Change{Field: "mode", Before: FormatMode(modeBits(fi)), After: FormatMode(p.Mode)})
	}
	return out, nil
}

// Observe records fi's mode, owner and group in m, by name.
func (p Perms) Observe(env *reconciler.Env, fi fs.FileInfo, m map[string]string) error {
	st := statOf(fi)
	m["mode"] = FormatMode(modeBits(fi))
	acc, err := accountsFor(env)
	if err != nil {
		return err
	}
	m["owner"] = acc.userName(int(st.Uid))
	m["group"] = acc.groupName(int(st.Gid))
	return nil
}

// Merge returns p with its unmanaged fields taken from fi, so that a file
// rewritten for its content keeps the ownership and mode it had.
func (p Perms) Merge(fi fs.FileInfo) Perms {
	if fi == nil {
		return p
	}
	st := statOf(fi)
	if p.UID < 0 {
		p.UID = int(st.Uid)
	}
	if p.GID < 0 {
		p.GID = int(st.Gid)
	}
	if !p.HasMode {
		p.Mode, p.HasMode = modeBits(fi), true
	}
	return p
}

// Options returns the ownership and mode a new file written with p gets:
// p's, with mode 0644 when p manages none.
func (p Perms) Options() atomicfile.Options {
	o := atomicfile.Options{UID: p.UID, GID: p.GID, Mode: defaultFileMode}
	if p.HasMode {
		o.Mode = p.Mode
	}
	return o
}

// Fix changes the ownership and mode of name where fi (its lstat) differs
// from p: a chown, then a chmod (chown clears setuid and setgid bits), and
// nothing when both already match.
func (p Perms) Fix(fsys *rootfs.FS, name string, fi fs.FileInfo) error {
	st := statOf(fi)
	uid, gid := -1, -1
	if p.UID >= 0 && int(st.Uid) != p.UID {
		uid = p.UID
	}
	if p.GID >= 0 && int(st.Gid) != p.GID {
		gid = p.GID
	}
	chowned := uid >= 0 || gid >= 0
	if chowned {
		if err := fsys.Lchown(name, uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if p.HasMode && (chowned || modeBits(fi) != p.Mode) && fi.Mode()&fs.ModeSymlink == 0 {
		if err := fsys.Chmod(name, p.Mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return nil
}
