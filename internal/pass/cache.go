package pass

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/reconciler"
)

// CacheFormat is the layout of the cache file; a file of another layout
// is not read.
const CacheFormat = 1

// Cache is one node's compiled catalog, cached in a file of the state
// directory. The catalog holds secret references, never values.
type Cache struct {
	File File
	Node string
	// Build, when set, identifies the build whose catalogs this program
	// accepts and writes, in place of [BuildIdentity]: fsgit's front for
	// cached runs accepts those of the full fsgit it was built with, and
	// writes none. ok false: none is accepted.
	Build func() (id string, ok bool)
}

// build is c.Build, or BuildIdentity when it is not set.
func (c *Cache) build() (string, bool) {
	if c.Build != nil {
		return c.Build()
	}
	return BuildIdentity()
}

// CacheFile is the cache file's content.
type CacheFile struct {
	Format int `json:"format"`
	// Key is the site's content key (desired.Key) the catalog was
	// compiled from.
	Key string `json:"key"`
	// Build identifies the fsgit build that compiled it: another build may
	// compile the same site differently.
	Build   string              `json:"build"`
	Node    string              `json:"node"`
	Catalog *reconciler.Catalog `json:"catalog"`
}

// CachePath is the cache file of a node in the state directory. A node
// name that is not a plain file name is hashed.
func CachePath(stateDir, node string) string {
	name := node
	if !plainFileName(node) {
		sum := sha256.Sum256([]byte(node))
		name = hex.EncodeToString(sum[:12])
	}
	return filepath.Join(stateDir, "catalog-"+name+".json")
}

func plainFileName(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// fetched is a cache file read and decoded, not yet checked: the file's
// content (nil, and why, when it could not be read or is not trusted)
// and the running build's identity.
type fetched struct {
	cf      *CacheFile
	why     string
	build   string
	buildOK bool
}

// fetch reads and decodes the cache file, which needs neither the site's
// key nor anything else of the pass: SiteCatalog.Load fetches it while
// the site's key is computed, then checks it (fetched.check). A file
// that anyone but its owner (this user) could have written is not
// trusted.
func (c *Cache) fetch() fetched {
	fh, err := c.File.FS.Open(c.File.Name)
	if errors.Is(err, os.ErrNotExist) {
		return fetched{why: "no cache file"}
	}
	if err != nil {
		return fetched{why: err.Error()}
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fetched{why: err.Error()}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 ||
		(ok && int(st.Uid) != os.Geteuid()) {
		return fetched{why: fmt.Sprintf("not trusted (mode %s, not a private file of this user)", fi.Mode())}
	}
	// Read at the size the stat gave (and on, should the file have grown):
	// no buffer grown and copied as a json.Decoder grows its own.
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(fh); err != nil {
		return fetched{why: fmt.Sprintf("unreadable: %v", err)}
	}
	var cf CacheFile
	if err := decodeCacheFile(buf.Bytes(), &cf); err != nil {
		return fetched{why: fmt.Sprintf("unreadable: %v", err)}
	}
	build, ok := c.build()
	return fetched{cf: &cf, build: build, buildOK: ok}
}

// check returns the fetched catalog if it is node's, for key and this
// build; otherwise nil and why not.
func (f fetched) check(node, key string) (*reconciler.Catalog, string) {
	if f.cf == nil {
		return nil, f.why
	}
	cf, build, ok := f.cf, f.build, f.buildOK
	switch {
	case cf.Format != CacheFormat:
		return nil, fmt.Sprintf("format %d, want %d", cf.Format, CacheFormat)
	case !ok:
		return nil, "this fsgit build cannot be identified"
	case cf.Build != build:
		return nil, "compiled by another fsgit build"
	case cf.Key != key:
		return nil, "the site changed"
	case cf.Node != node || cf.Catalog == nil || cf.Catalog.Node != node:
		return nil, "not this node's catalog"
	}
	return cf.Catalog, ""
}

// write caches the catalog under key, atomically, readable by the owner
// only. It does nothing when the build cannot be identified.
func (c *Cache) write(key string, cat *reconciler.Catalog) error {
	build, ok := c.build()
	if !ok {
		return errors.New("this fsgit build cannot be identified")
	}
	b, err := (&CacheFile{Format: CacheFormat, Key: key, Build: build, Node: c.Node, Catalog: cat}).Encode()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.File.FS, c.File.Name, b, atomicfile.Options{UID: -1, GID: -1, Mode: 0o600}); err != nil {
		return fmt.Errorf("write %s: %w", c.File, err)
	}
	return nil
}

// Encode is the cache file as written: compact and without HTML escapes,
// so that the specs' raw JSON is kept byte for byte, as the evaluation
// produced it.
func (f *CacheFile) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode the catalog: %w", err)
	}
	return buf.Bytes(), nil
}

// BuildIdentity identifies the running fsgit build: the module's version
// and VCS revision, and the Go build ID of the executable, which changes
// with any change of the code (a dirty tree at the same revision too). ok
// is false when nothing reliable identifies it.
func BuildIdentity() (id string, ok bool) {
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(&b, "%s@%s", bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(&b, " %s=%s", s.Key, s.Value)
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	if bid, err := goBuildID(exe); err == nil {
		fmt.Fprintf(&b, " buildid=%s", bid)
		return b.String(), true
	}
	// No build ID (not ELF): the executable file itself, by size and
	// modification time.
	fi, err := os.Stat(exe)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(&b, " exe=%s size=%d mtime=%d", exe, fi.Size(), fi.ModTime().UnixNano())
	return b.String(), true
}

// goBuildID reads the Go build ID from an ELF executable's
// .note.go.buildid section (the note the go command's own buildid reads).
func goBuildID(exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return "", errors.New("no .note.go.buildid section")
	}
	note, err := sec.Data()
	if err != nil {
		return "", err
	}
	// An ELF note: namesz, descsz, type (4 bytes each), the name "Go\x00"
	// padded to 4 bytes, then the build ID.
	if len(note) < 16 {
		return "", errors.New("short .note.go.buildid")
	}
	bo := f.ByteOrder
	namesz, descsz := bo.Uint32(note[0:]), bo.Uint32(note[4:])
	off := 12 + (uint64(namesz)+3)&^3
	if namesz != 4 || string(note[12:15]) != "Go\x00" || off+uint64(descsz) > uint64(len(note)) || descsz == 0 {
		return "", errors.New("malformed .note.go.buildid")
	}
	return string(note[off : off+uint64(descsz)]), nil
}
