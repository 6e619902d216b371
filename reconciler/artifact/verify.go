package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/reconciler"
)

// record is what the cache remembers of a managed path it verified: the
// stat that identifies the bytes it hashed, and their digest. While the
// path's stat is the same, its digest is known without reading it.
type record struct {
	Path  string `json:"path"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtimeNs"`
	Ctime int64  `json:"ctimeNs"`
	// SHA256 is the digest of the content at that stat.
	SHA256 string `json:"sha256"`
}

// recordOf returns the identifying stat of fi for path.
func recordOf(path string, fi fs.FileInfo) record {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return record{Path: path, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	}
	return record{
		Path: path, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
}

// recordPath is where the record of a managed path (its host path) is kept
// in the cache directory dir.
func recordPath(dir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(dir, "verified", hex.EncodeToString(sum[:16])+".json")
}

// verify returns the sha256 of the regular file at path: from its record
// when the stat still matches, otherwise by hashing it (and, outside noop,
// recording what it found).
func (k *Artifact) verify(env *reconciler.Env, id reconciler.ID, c cache, path string, fi fs.FileInfo) (string, error) {
	fsys := env.FS()
	cur := recordOf(fsys.HostPath(path), fi)
	if b, err := c.fsys.ReadFile(recordPath(c.dir, cur.Path)); err == nil {
		var old record
		if json.Unmarshal(b, &old) == nil && old.SHA256 != "" {
			sum := old.SHA256
			old.SHA256 = ""
			if old == cur {
				return sum, nil
			}
		}
	}
	logger(env).Debug("artifact: hashing file", "id", id, "path", path, "bytes", fi.Size())
	f, err := fsys.Open(path)
	if err != nil {
		return "", fmt.Errorf("open to hash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 256<<10)); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// The stat must not have moved while hashing, or the record would pair
	// a digest with the wrong bytes.
	if after, err := fsys.Lstat(path); err == nil && recordOf(cur.Path, after) == cur && !env.Noop {
		cur.SHA256 = sum
		if err := writeRecord(c, cur); err != nil {
			logger(env).Warn("artifact: cannot record verification", "id", id, "err", err)
		}
	}
	return sum, nil
}

// remember records that path, as it is now, holds sum. Losing a record
// costs one re-hash, so failures are logged, not returned.
func (k *Artifact) remember(env *reconciler.Env, c cache, path, sum string) {
	fsys := env.FS()
	fi, err := fsys.Lstat(path)
	if err == nil {
		rec := recordOf(fsys.HostPath(path), fi)
		rec.SHA256 = sum
		err = writeRecord(c, rec)
	}
	if err != nil {
		logger(env).Warn("artifact: cannot record verification", "path", path, "err", err)
	}
}

// writeRecord replaces the record of rec.Path, atomically.
func writeRecord(c cache, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode verification record: %w", err)
	}
	dst := recordPath(c.dir, rec.Path)
	if err := c.fsys.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("create verification records directory: %w", err)
	}
	if err := atomicfile.WriteFile(c.fsys, dst, b, atomicfile.Options{UID: -1, GID: -1, Mode: 0o600}); err != nil {
		return fmt.Errorf("write verification record: %w", err)
	}
	return nil
}
