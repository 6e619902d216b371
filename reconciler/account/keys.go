package account

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/reconciler"
)

// The authorized_keys file and its directory, relative to the home.
const (
	sshDir   = ".ssh"
	keysFile = ".ssh/authorized_keys"
	keysMode = 0o600
	dirMode  = 0o700
)

// keyState is what a user's authorized_keys file looks like on disk.
// Everything is read through an os.Root opened on the home directory, so a
// symlink planted by the user cannot lead fsgit outside it.
type keyState struct {
	homeMissing bool
	dir         *stat // nil: no ~/.ssh
	file        *stat // nil: no authorized_keys
	content     []byte
}

type stat struct {
	mode     fs.FileMode
	uid, gid int
}

func statOf(fi fs.FileInfo) *stat {
	st := &stat{mode: fi.Mode()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.uid, st.gid = int(sys.Uid), int(sys.Gid)
	}
	return st
}

// readKeys reads the authorized_keys file under home.
func readKeys(env *reconciler.Env, home string) (*keyState, error) {
	p, err := env.Path(home)
	if err != nil {
		return nil, fmt.Errorf("map home: %w", err)
	}
	root, err := os.OpenRoot(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &keyState{homeMissing: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open home %s: %w", home, err)
	}
	defer root.Close()
	ks := &keyState{}
	fi, err := root.Lstat(sshDir)
	if errors.Is(err, fs.ErrNotExist) {
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s/%s: %w", home, sshDir, err)
	}
	ks.dir = statOf(fi)
	if !fi.IsDir() {
		return ks, nil
	}
	fi, err = root.Lstat(keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		return ks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s/%s: %w", home, keysFile, err)
	}
	ks.file = statOf(fi)
	if fi.Mode().IsRegular() {
		if ks.content, err = root.ReadFile(keysFile); err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", home, keysFile, err)
		}
	}
	return ks, nil
}

// keysContent is the file that holds exactly these keys.
func keysContent(keys []string) []byte {
	if len(keys) == 0 {
		return nil
	}
	return []byte(strings.Join(keys, "\n") + "\n")
}

// diff compares the file with the wanted keys and ownership. It returns a
// description of what is wrong, for the change's Before.
func (ks *keyState) diff(want []string, uid, gid int) (string, bool) {
	if len(want) == 0 && (ks.homeMissing || ks.dir == nil || ks.file == nil) {
		return "", false
	}
	if ks.homeMissing {
		return "home missing", true
	}
	var wrong []string
	switch {
	case ks.dir == nil:
		wrong = append(wrong, "~/.ssh missing")
	case !ks.dir.mode.IsDir():
		wrong = append(wrong, "~/.ssh is not a directory")
	default:
		if ks.dir.mode.Perm() != dirMode {
			wrong = append(wrong, fmt.Sprintf("~/.ssh mode %04o", ks.dir.mode.Perm()))
		}
		if ks.dir.uid != uid || ks.dir.gid != gid {
			wrong = append(wrong, fmt.Sprintf("~/.ssh owner %d:%d", ks.dir.uid, ks.dir.gid))
		}
	}
	switch {
	case ks.file == nil:
		wrong = append(wrong, "absent")
	case !ks.file.mode.IsRegular():
		wrong = append(wrong, "not a regular file")
	default:
		if string(ks.content) != string(keysContent(want)) {
			wrong = append(wrong, describeContent(ks.content))
		}
		if ks.file.mode.Perm() != keysMode {
			wrong = append(wrong, fmt.Sprintf("mode %04o", ks.file.mode.Perm()))
		}
		if ks.file.uid != uid || ks.file.gid != gid {
			wrong = append(wrong, fmt.Sprintf("owner %d:%d", ks.file.uid, ks.file.gid))
		}
	}
	return strings.Join(wrong, ", "), len(wrong) > 0
}

// summary is the observed state of the keys, for Plan.Observed.
func (ks *keyState) summary() string {
	switch {
	case ks.homeMissing:
		return "home missing"
	case ks.file == nil:
		return "absent"
	}
	return describeContent(ks.content)
}

func describeKeys(keys []string) string { return describeContent(keysContent(keys)) }

// describeContent names a keys file by its number of keys and a short
// hash: public keys are not secret, but they are long.
func describeContent(b []byte) string {
	n := 0
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			n++
		}
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d keys (sha256:%s)", n, hex.EncodeToString(sum[:6]))
}

// applyKeys writes s's authorized_keys atomically (internal/atomicfile): a
// temporary file in ~/.ssh, written, owned by the user, mode 0600, synced,
// renamed over the old one, and the directory synced. It reads the user's ids afresh: the
// user may have been created or changed a moment ago.
func applyKeys(env *reconciler.Env, s *UserSpec) error {
	d, err := hostFiles.read()
	if err != nil {
		return err
	}
	u, ok := d.users[s.Name]
	if !ok {
		return fmt.Errorf("write authorized_keys: user %s does not exist", s.Name)
	}
	p, err := env.Path(s.Home)
	if err != nil {
		return fmt.Errorf("map home: %w", err)
	}
	root, err := os.OpenRoot(p)
	if err != nil {
		return fmt.Errorf("write authorized_keys: open home: %w", err)
	}
	defer root.Close()

	fi, err := root.Lstat(sshDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := root.Mkdir(sshDir, dirMode); err != nil {
			return fmt.Errorf("create %s/%s: %w", s.Home, sshDir, err)
		}
	case err != nil:
		return fmt.Errorf("stat %s/%s: %w", s.Home, sshDir, err)
	case !fi.IsDir():
		return fmt.Errorf("write authorized_keys: %s/%s is not a directory", s.Home, sshDir)
	}
	if err := root.Lchown(sshDir, u.uid, u.gid); err != nil {
		return fmt.Errorf("chown %s/%s: %w", s.Home, sshDir, err)
	}
	if err := root.Chmod(sshDir, dirMode); err != nil {
		return fmt.Errorf("chmod %s/%s: %w", s.Home, sshDir, err)
	}

	dir, err := root.OpenRoot(sshDir)
	if err != nil {
		return fmt.Errorf("open %s/%s: %w", s.Home, sshDir, err)
	}
	defer dir.Close()
	o := atomicfile.Options{UID: u.uid, GID: u.gid, Mode: keysMode}
	if err := atomicfile.ReplaceIn(dir, filepath.Base(keysFile), o, func(w io.Writer) error {
		_, err := w.Write(keysContent(s.AuthorizedKeys))
		return err
	}); err != nil {
		return fmt.Errorf("write %s/%s: %w", s.Home, keysFile, err)
	}
	return nil
}
