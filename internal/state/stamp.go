package state

import (
	"errors"
	"os"
	"syscall"
)

// stamp is what the state file's metadata says about its content: a
// write by anyone changes its change time (ctime), which no one but the
// kernel sets, or its size or inode.
type stamp struct {
	ino, size         int64
	ctimeSec, ctimeNs int64
	mtimeSec, mtimeNs int64
}

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

// remember records the state file's stamp as the store's own: it is
// called after the store opened, wrote or replaced the file.
func (s *Store) remember() {
	st := stampOf(s.path)
	s.stampMu.Lock()
	s.stamp = st
	s.stampMu.Unlock()
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
// something else: a hand edit, a restore, a failing disk); otherwise it
// costs one stat. A writable store
// moves a damaged file aside and carries on from the inventory copy, as
// any access that finds one does (a [Recovery]). It reports whether the
// file had changed.
func (s *Store) Recheck() (bool, error) {
	if !s.changedOutside() {
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
	return true, nil
}
