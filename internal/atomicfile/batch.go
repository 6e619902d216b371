package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Batch replaces many files with the durability of [Replace] for a fraction
// of its fsyncs. [Batch.Replace] writes a file's temporary file (its content,
// owner and mode) and leaves the target as it is; [Batch.Commit] then makes
// every temporary file durable with one syncfs per filesystem, renames each
// over its target, and fsyncs each directory it touched once.
//
// Whatever the moment of a crash, each target holds its old content or its
// new one, whole: before the commit's syncfs returns no target has been
// touched (a kill -9 or power cut leaves temporary files, which the next
// write replaces); a rename only happens to a temporary file whose content
// is on disk; once Commit returns, every rename is on disk too.
//
// Writes are staged on behalf of an owner (a resource's ID), so that
// Commit can say whose replacements failed. A Batch is safe for
// concurrent use: Commit waits for the Replace calls in progress, and a
// Replace that starts during a Commit stages for the next one.
type Batch struct {
	// gate is held shared by each Replace, from opening its directory to
	// staging its entry, and exclusively by Commit, which closes the
	// directories: a Replace never stages through a directory that a
	// Commit running at the same time has closed.
	gate sync.RWMutex
	mu   sync.Mutex
	// dirs are the directories open for staged entries, by name; each is
	// opened once however many entries it holds.
	dirs map[string]*os.Root
	// dirFiles are the same directories opened as files (nil where that
	// failed), on which temporary files are created (openTempAt).
	dirFiles map[string]*os.File
	pending  []*staged
	// byTemp finds the entry already staged under a directory's temporary
	// name, which a second Replace of the same target takes over.
	byTemp map[string]*staged
	// owners counts the pending entries of each owner.
	owners map[string]int
}

// staged is one replacement waiting for its commit.
type staged struct {
	owner   string
	dirName string
	dir     *os.Root
	tmp     string
	base    string
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{dirs: map[string]*os.Root{}, dirFiles: map[string]*os.File{}, byTemp: map[string]*staged{}, owners: map[string]int{}}
}

// Replace stages the replacement of the file name (an absolute path,
// opened through d) with what write produces, for owner: the temporary file
// is written, given o's owner and mode and closed, the target is left
// untouched until [Batch.Commit]. Its directory must exist. When write
// fails nothing is staged.
func (b *Batch) Replace(owner string, d Dirs, name string, o Options, write func(w io.Writer) error) error {
	b.gate.RLock()
	defer b.gate.RUnlock()
	dirName := filepath.Dir(name)
	dir, dirFile, err := b.openDir(d, dirName)
	if err != nil {
		return fmt.Errorf("open the directory of %s: %w", name, err)
	}
	base := filepath.Base(name)
	tmp, err := writeTemp(dir, dirFile, base, o, write, false)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	key := dirName + "\x00" + tmp
	if s, ok := b.byTemp[key]; ok {
		b.owners[s.owner]--
		b.owners[owner]++
		s.owner = owner
		return nil
	}
	b.owners[owner]++
	s := &staged{owner: owner, dirName: dirName, dir: dir, tmp: tmp, base: base}
	b.byTemp[key] = s
	b.pending = append(b.pending, s)
	return nil
}

// openDir returns the open directory name, and the same directory opened
// as a file (nil if that failed: temporary files are then created through
// the directory), opening them on first use.
func (b *Batch) openDir(d Dirs, name string) (*os.Root, *os.File, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dir, ok := b.dirs[name]; ok {
		return dir, b.dirFiles[name], nil
	}
	dir, err := d.OpenDir(name)
	if err != nil {
		return nil, nil, err
	}
	b.dirs[name] = dir
	if f, err := dir.Open("."); err == nil {
		b.dirFiles[name] = f
	}
	return dir, b.dirFiles[name], nil
}

// Pending reports whether owner has replacements waiting for a commit.
func (b *Batch) Pending(owner string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.owners[owner] > 0
}

// Len returns the number of replacements waiting for a commit.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Commit makes the staged replacements durable and visible: one syncfs
// per filesystem holding a temporary file, every rename, then one fsync
// per directory. It returns the errors by owner (nil when all went well):
// a temporary file that could not be made durable is removed and its
// target left as it was. The batch is empty afterwards, its directories
// closed, and can stage again.
func (b *Batch) Commit() map[string]error {
	b.gate.Lock()
	defer b.gate.Unlock()
	b.mu.Lock()
	pending, dirs, dirFiles := b.pending, b.dirs, b.dirFiles
	b.pending, b.dirs, b.dirFiles, b.byTemp, b.owners = nil, map[string]*os.Root{}, map[string]*os.File{}, map[string]*staged{}, map[string]int{}
	b.mu.Unlock()
	defer func() {
		for _, d := range dirs {
			_ = d.Close()
		}
		for _, f := range dirFiles {
			_ = f.Close()
		}
	}()
	errs := map[string]error{}
	fail := func(s *staged, err error) {
		errs[s.owner] = errors.Join(errs[s.owner], err)
		_ = s.dir.Remove(s.tmp)
	}
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	sort.Strings(names)
	// One syncfs per filesystem: the directories say which.
	synced := map[uint64]error{}
	dirErr := map[string]error{}
	for _, name := range names {
		if err := syncFS(dirs[name], synced); err != nil {
			dirErr[name] = err
		}
	}
	touched := map[string]bool{}
	for _, s := range pending {
		if err := dirErr[s.dirName]; err != nil {
			fail(s, fmt.Errorf("make %s durable: %w", filepath.Join(s.dirName, s.base), err))
			continue
		}
		if err := renameIn(s.dir, dirFiles[s.dirName], s.tmp, s.base); err != nil {
			fail(s, fmt.Errorf("rename %s into place: %w", filepath.Join(s.dirName, s.base), err))
			continue
		}
		touched[s.dirName] = true
	}
	for _, name := range names {
		if !touched[name] {
			continue
		}
		if err := SyncDir(dirs[name]); err != nil {
			// Every owner with a file there is told: their rename may
			// not survive a power cut.
			for _, s := range pending {
				if s.dirName == name {
					errs[s.owner] = errors.Join(errs[s.owner], err)
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// renameIn renames the temporary file tmp over base, both names of dir:
// with renameat(2) on dirFile, dir opened as a file, when it is open, and
// through dir otherwise. os.Root's Rename first looks base up, to refuse
// a directory over a directory as os.Rename does; the batch's temporary
// files are regular files, which the kernel never lets replace a
// directory (EISDIR), so that the lookup, one lstat per file, is spared.
// The error reads as os.Root's.
func renameIn(dir *os.Root, dirFile *os.File, tmp, base string) error {
	if dirFile == nil {
		return dir.Rename(tmp, base)
	}
	rc, err := dirFile.SyscallConn()
	if err != nil {
		return dir.Rename(tmp, base)
	}
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		rerr = unix.Renameat(int(fd), tmp, int(fd), base)
	}); err != nil {
		return dir.Rename(tmp, base)
	}
	if rerr != nil {
		return &os.LinkError{Op: "renameat", Old: tmp, New: base, Err: rerr}
	}
	return nil
}

// syncFS runs syncfs on dir's filesystem unless synced (by device
// number) holds it already, and returns its error.
func syncFS(dir *os.Root, synced map[uint64]error) error {
	d, err := dir.Open(".")
	if err != nil {
		return fmt.Errorf("open directory %s to sync its filesystem: %w", dir.Name(), err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return fmt.Errorf("stat directory %s: %w", dir.Name(), err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat directory %s: no device number", dir.Name())
	}
	dev := st.Dev
	if err, done := synced[dev]; done {
		return err
	}
	rc, err := d.SyscallConn()
	if err != nil {
		return fmt.Errorf("sync the filesystem of %s: %w", dir.Name(), err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.Syncfs(int(fd))
	}); err != nil {
		return fmt.Errorf("sync the filesystem of %s: %w", dir.Name(), err)
	}
	if serr != nil {
		serr = fmt.Errorf("syncfs %s: %w", dir.Name(), serr)
	}
	synced[dev] = serr
	return serr
}
