package state

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// stamp is what the state file's metadata says about its content: a
// write by anyone changes its change time (ctime), which no one but the
// kernel sets, or its size or inode.
type stamp struct {
	ino, size         int64
	ctimeSec, ctimeNs int64
	mtimeSec, mtimeNs int64
}

// racyWindow is how long after a file's change time a stamp of it is
// racy. The kernel takes file times from its coarse clock, one tick (1 to
// 10 ms) behind: a write by someone else in the tick of the store's own
// write, or between that write and the stat that takes its stamp, leaves
// the stamp the store remembers. The store cannot tell such a stamp from
// its own, so Recheck reads the file through once more while its stamp is
// racy (what git does with racily clean index entries). The window is
// generous: a write after the stat, later than the window past the change
// time, gets a later change time.
const racyWindow = 50 * time.Millisecond

// stampOf stats path; a file it cannot stat has the zero stamp, which
// matches none (no file has inode 0).
func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return stamp{}
	}
	return stamp{ino: int64(st.Ino), size: st.Size, ctimeSec: st.Ctim.Sec, ctimeNs: st.Ctim.Nsec,
		mtimeSec: st.Mtim.Sec, mtimeNs: st.Mtim.Nsec}
}

// racyAt says whether the stamp, taken at or after before, is racy: its
// change time is less than racyWindow before that.
func (st stamp) racyAt(before time.Time) bool {
	return before.Sub(time.Unix(st.ctimeSec, st.ctimeNs)) < racyWindow
}

// remember records the state file's stamp as the store's own: it is
// called after the store opened, wrote or replaced the file.
func (s *Store) remember() {
	before := time.Now()
	st := stampOf(s.path)
	s.setStamp(st, st.racyAt(before))
}

// setStamp records st as the store's own, racy or not.
func (s *Store) setStamp(st stamp, racy bool) {
	s.stampMu.Lock()
	s.stamp, s.racy = st, racy
	s.stampMu.Unlock()
}

// racyStamp says whether the stamp the store remembers is racy.
func (s *Store) racyStamp() bool {
	s.stampMu.Lock()
	defer s.stampMu.Unlock()
	return s.racy
}

// changedOutside reports whether the state file changed since this store
// last opened, wrote, checked or replaced it: written by something else (a
// hand edit, a restore, a failing disk), replaced, or gone. It costs one
// stat.
func (s *Store) changedOutside() bool {
	now := stampOf(s.path)
	s.stampMu.Lock()
	defer s.stampMu.Unlock()
	return now == stamp{} || now != s.stamp
}

// Recheck reads the state file through again, as Open does (its structure,
// then every bucket and value), when it changed outside this store since
// the store last opened, wrote, checked or replaced it (written by
// something else: a hand edit, a restore, a failing disk), or when the
// stamp it remembers is racy (see racyWindow); otherwise it costs one
// stat. A writable store moves a damaged file aside and carries on from
// the inventory copy, as any access that finds one does (a [Recovery]).
// It reports whether the file had changed: a file read through only for a
// racy stamp, and found sound, had not, as far as anyone can tell.
func (s *Store) Recheck() (bool, error) {
	changed := s.changedOutside()
	if !changed && !s.racyStamp() {
		return false, nil
	}
	// What changed outside is not what the memo says: the next record
	// compares every entry with the file.
	s.setMemo(nil)
	s.mu.RLock()
	db := s.db
	s.mu.RUnlock()
	err := checkFile(s.path)
	if err == nil {
		err = verify(s.path, db)
	}
	if IsCorrupt(err) && !s.readOnly {
		if rerr := s.recoverFrom(db, err); rerr != nil {
			return true, errors.Join(err, rerr)
		}
		return true, nil
	}
	if err != nil {
		return true, err
	}
	s.remember()
	return changed, nil
}
