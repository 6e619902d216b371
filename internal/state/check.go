package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The layout of a bbolt file's first two pages, the meta pages, as
// go.etcd.io/bbolt v1.x writes them (internal/common/meta.go and page.go):
// a 16-byte page header (id, flags, count, overflow), then magic, version,
// page size, flags, root bucket (root page id, sequence), freelist page id,
// high water mark (the first page id past the file's pages), transaction id
// and an FNV-64a checksum of the meta fields before it. Integers are in the
// machine's byte order.
const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	pageHeaderSize    = 16
	metaSize          = 64
	metaChecksumStart = pageHeaderSize
	metaChecksumEnd   = pageHeaderSize + 56
	pgidNoFreelist    = ^uint64(0)

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10

	minPageSize = 512
	maxPageSize = 64 << 10
)

// boltMeta is one decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64
	txid     uint64
}

// checkFile checks the state file's structure before bbolt maps it, so
// that what bbolt reads through its memory map is inside the file and
// has the shape bbolt expects: at least one meta page with its magic,
// version and checksum intact, and for the meta bbolt will use (the valid
// one with the highest transaction id) a sane page size, a file at least
// as long as the pages it names (the high water mark), every page of the
// tree (every bucket's, from the root) inside those, of the right type,
// reached once (no cycle), its keys and values inside it, and a freelist
// that lists only pages below the high water mark that nothing uses, once
// each. It reads the file with plain reads and costs one read of each
// page in use: the state file is small. A file that fails
// is corrupt: the error is a *CorruptError. An empty file is left to
// bbolt, which initializes it.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check state %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check state %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return corruptf(path, "check", "not a regular file (%s)", fi.Mode().Type())
	}
	m, err := readMetas(f)
	if err != nil {
		return &CorruptError{Path: path, Op: "check", Err: err}
	}
	// The size is taken after the metas: bbolt grows the file before it
	// writes a meta that names the new pages.
	if fi, err = f.Stat(); err != nil {
		return fmt.Errorf("check state %s: %w", path, err)
	}
	if err := checkMeta(f, fi.Size(), m); err != nil {
		return &CorruptError{Path: path, Op: "check", Err: err}
	}
	return nil
}

// readMetas returns the meta bbolt would use: of the two meta pages, the
// valid one with the highest transaction id.
func readMetas(f io.ReaderAt) (*boltMeta, error) {
	m0, err0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := readMeta(f, pageSize)
	if err1 != nil && err0 != nil {
		// The page size may differ from the OS's: try the usual ones for
		// the second meta page.
		for ps := int64(minPageSize); ps <= maxPageSize && err1 != nil; ps *= 2 {
			if ps != pageSize {
				m1, err1 = readMeta(f, ps)
			}
		}
	}
	switch {
	case err0 != nil && err1 != nil:
		return nil, fmt.Errorf("both meta pages are invalid (page 0: %w; page 1: %w)", err0, err1)
	case err0 != nil:
		return m1, nil
	case err1 != nil:
		return m0, nil
	case m1.txid > m0.txid:
		return m1, nil
	default:
		return m0, nil
	}
}

// readMeta decodes and validates the meta page at off.
func readMeta(f io.ReaderAt, off int64) (*boltMeta, error) {
	var buf [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(buf[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file ends inside it")
		}
		return nil, err
	}
	le := binary.NativeEndian
	h := buf[pageHeaderSize:]
	switch {
	case le.Uint32(h[0:]) != boltMagic:
		return nil, errors.New("no bbolt magic number")
	case le.Uint32(h[4:]) != boltVersion:
		return nil, fmt.Errorf("bbolt version %d, want %d", le.Uint32(h[4:]), boltVersion)
	}
	sum := fnv.New64a()
	sum.Write(buf[metaChecksumStart:metaChecksumEnd])
	if sum.Sum64() != le.Uint64(buf[metaChecksumEnd:]) {
		return nil, errors.New("checksum mismatch")
	}
	return &boltMeta{
		pageSize: le.Uint32(h[8:]),
		root:     le.Uint64(h[16:]),
		freelist: le.Uint64(h[32:]),
		hwm:      le.Uint64(h[40:]),
		txid:     le.Uint64(h[48:]),
	}, nil
}

// checkMeta checks what a valid meta names against the file.
func checkMeta(f io.ReaderAt, size int64, m *boltMeta) error {
	ps := uint64(m.pageSize)
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return fmt.Errorf("page size %d is not a power of two between %d and %d", ps, minPageSize, maxPageSize)
	}
	// The high water mark is the number of pages in use; the smallest
	// file holds two metas, a freelist and a root leaf.
	if m.hwm < 4 || m.hwm > uint64(size)/ps {
		return fmt.Errorf("the meta page names %d pages of %d bytes (%d bytes), and the file has %d bytes", m.hwm, ps, m.hwm*ps, size)
	}
	if m.root < 2 || m.root >= m.hwm {
		return fmt.Errorf("root page %d is outside pages 2 to %d", m.root, m.hwm-1)
	}
	if err := checkPage(f, ps, m.hwm, m.root, "root", branchPageFlag|leafPageFlag, nil); err != nil {
		return err
	}
	w := &pageWalk{f: f, ps: ps, hwm: m.hwm, seen: make([]bool, m.hwm)}
	if err := w.page(m.root, 0, keyRange{}); err != nil {
		return err
	}
	if m.freelist == pgidNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.hwm {
		return fmt.Errorf("freelist page %d is outside pages 2 to %d", m.freelist, m.hwm-1)
	}
	if w.seen[m.freelist] {
		return fmt.Errorf("freelist page %d is also a data page", m.freelist)
	}
	return checkPage(f, ps, m.hwm, m.freelist, "freelist", freelistPageFlag, func(hdr []byte, overflow uint64) error {
		// A freelist page lists page ids after its header; a count of
		// 0xFFFF means the real count is the first entry.
		count := uint64(binary.NativeEndian.Uint16(hdr[10:]))
		extra := uint64(0)
		if count == 0xFFFF {
			var b [8]byte
			if _, err := f.ReadAt(b[:], int64(m.freelist*ps+pageHeaderSize)); err != nil {
				return fmt.Errorf("freelist page %d: %w", m.freelist, err)
			}
			count, extra = binary.NativeEndian.Uint64(b[:]), 1
		}
		if avail := ((overflow+1)*ps - pageHeaderSize) / 8; count+extra > avail {
			return fmt.Errorf("freelist page %d lists %d pages, more than its %d pages hold", m.freelist, count, overflow+1)
		}
		// Every free page is a data page below the high water mark, free
		// once, and neither the root nor the freelist itself: bbolt would
		// otherwise hand out a page in use.
		ids := make([]byte, count*8)
		if _, err := f.ReadAt(ids, int64(m.freelist*ps+pageHeaderSize+extra*8)); err != nil {
			return fmt.Errorf("freelist page %d: %w", m.freelist, err)
		}
		seen := make(map[uint64]bool, count)
		for i := uint64(0); i < count; i++ {
			id := binary.NativeEndian.Uint64(ids[i*8:])
			switch {
			case id < 2 || id >= m.hwm:
				return fmt.Errorf("freelist lists page %d, outside pages 2 to %d", id, m.hwm-1)
			case seen[id]:
				return fmt.Errorf("freelist lists page %d twice", id)
			case id == m.root || (id >= m.freelist && id <= m.freelist+overflow) || w.seen[id]:
				return fmt.Errorf("freelist lists page %d, which is in use", id)
			}
			seen[id] = true
		}
		return nil
	})
}

// checkPage checks the header of page id: its id, a type among flags, and
// its overflow pages below the high water mark. more checks the rest.
func checkPage(f io.ReaderAt, ps, hwm, id uint64, what string, flags uint16, more func(hdr []byte, overflow uint64) error) error {
	var hdr [pageHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], int64(id*ps)); err != nil {
		return fmt.Errorf("%s page %d: %w", what, id, err)
	}
	le := binary.NativeEndian
	gotID, gotFlags, overflow := le.Uint64(hdr[0:]), le.Uint16(hdr[8:]), uint64(le.Uint32(hdr[12:]))
	switch {
	case gotID != id:
		return fmt.Errorf("%s page %d says it is page %d", what, id, gotID)
	case gotFlags&flags == 0 || gotFlags&^flags != 0:
		return fmt.Errorf("%s page %d has type flags %#x", what, id, gotFlags)
	case id+overflow >= hwm:
		return fmt.Errorf("%s page %d runs %d pages past the high water mark %d", what, id, overflow, hwm)
	}
	if more != nil {
		return more(hdr[:], overflow)
	}
	return nil
}

// Page elements: a branch element is pos, key size (uint32 each) and a
// child page id (uint64); a leaf element is flags, pos, key size and value
// size (uint32 each). pos counts from the element itself. A leaf element
// flagged as a bucket holds the bucket's root page id and sequence
// (uint64 each), followed, for an inline bucket (root 0), by its one leaf
// page.
const (
	elementSize    = 16
	bucketLeafFlag = 0x01
	bucketHeader   = 16
	maxTreeDepth   = 64
)

// pageWalk reads the tree of pages from the root, through every bucket,
// with plain reads (never the map), and checks each page's header and
// elements: page ids below the high water mark and never reached twice
// (no cycle for bbolt's cursors to loop in), the right type, every key and
// value inside its page, and the keys in order: strictly ascending within
// a page, and inside the bounds the branch above gives (bbolt finds,
// deletes and inserts by binary search, so a key out of order is a key a
// delete does not find, and a loop that deletes until it is gone never
// ends).
type pageWalk struct {
	f   io.ReaderAt
	ps  uint64
	hwm uint64
	// seen marks the pages reached, by id (below hwm).
	seen []bool
	// bufs holds a buffer per depth, reused from page to page: a page's
	// buffer is in use only while the pages below it are read.
	bufs [][]byte
}

// keyRange bounds the keys of a page: lo <= key < hi, where a nil lo or hi
// is no bound.
type keyRange struct{ lo, hi []byte }

// check says whether key k, the page's i-th, is inside r and after the
// page's previous key prev.
func (r keyRange) check(id uint64, i int, k, prev []byte) error {
	switch {
	case i > 0 && bytes.Compare(k, prev) <= 0:
		return fmt.Errorf("page %d: key %d (%x) is not after key %d (%x)", id, i, k, i-1, prev)
	case r.lo != nil && bytes.Compare(k, r.lo) < 0:
		return fmt.Errorf("page %d: key %d (%x) is before %x, where the branch above puts this page", id, i, k, r.lo)
	case r.hi != nil && bytes.Compare(k, r.hi) >= 0:
		return fmt.Errorf("page %d: key %d (%x) is not before %x, where the branch above ends this page", id, i, k, r.hi)
	}
	return nil
}

// page checks page id, reached at depth with its keys bounded by r, and
// the pages below it.
func (w *pageWalk) page(id uint64, depth int, r keyRange) error {
	switch {
	case depth > maxTreeDepth:
		return fmt.Errorf("page %d: the tree is deeper than %d levels", id, maxTreeDepth)
	case id < 2 || id >= w.hwm:
		return fmt.Errorf("a page refers to page %d, outside pages 2 to %d", id, w.hwm-1)
	case w.seen[id]:
		return fmt.Errorf("page %d is reached twice", id)
	}
	var hdr [pageHeaderSize]byte
	if _, err := w.f.ReadAt(hdr[:], int64(id*w.ps)); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	overflow := uint64(binary.NativeEndian.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return fmt.Errorf("page %d runs %d pages past the high water mark %d", id, overflow, w.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return fmt.Errorf("page %d is reached twice", i)
		}
		w.seen[i] = true
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, nil)
	}
	n := (overflow + 1) * w.ps
	if uint64(cap(w.bufs[depth])) < n {
		w.bufs[depth] = make([]byte, n)
	}
	buf := w.bufs[depth][:n]
	if _, err := w.f.ReadAt(buf, int64(id*w.ps)); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	if got := binary.NativeEndian.Uint64(buf); got != id {
		return fmt.Errorf("page %d says it is page %d", id, got)
	}
	return w.elements(id, buf, depth, r)
}

// elements checks the elements of a branch or leaf page held in buf (a
// page of the file, or an inline bucket's page inside a value), whose keys
// r bounds. A key is a slice of buf, which stays unchanged while the pages
// below are read (into the buffers of deeper levels).
func (w *pageWalk) elements(id uint64, buf []byte, depth int, r keyRange) error {
	le := binary.NativeEndian
	flags, count := le.Uint16(buf[8:]), int(le.Uint16(buf[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("page %d has type flags %#x, want a branch or a leaf", id, flags)
	}
	if flags == branchPageFlag && count == 0 {
		return fmt.Errorf("branch page %d is empty", id)
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit in it", id, count)
	}
	if flags == branchPageFlag {
		return w.branch(id, buf, count, depth, r)
	}
	var prev []byte
	for i := range count {
		off := pageHeaderSize + i*elementSize
		e := buf[off : off+elementSize]
		eflags, pos, ksize, vsize := le.Uint32(e[0:]), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		start := uint64(off) + pos
		if start+ksize+vsize > uint64(len(buf)) {
			return fmt.Errorf("page %d: element %d's key or value is outside the page", id, i)
		}
		k := buf[start : start+ksize]
		if err := r.check(id, i, k, prev); err != nil {
			return err
		}
		prev = k
		if eflags&bucketLeafFlag == 0 {
			continue
		}
		v := buf[start+ksize : start+ksize+vsize]
		if len(v) < bucketHeader {
			return fmt.Errorf("page %d: element %d is a bucket of %d bytes", id, i, len(v))
		}
		// A nested bucket's keys are a space of their own.
		if root := le.Uint64(v); root != 0 {
			if err := w.page(root, depth+1, keyRange{}); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketHeader:]
		if len(inline) < pageHeaderSize {
			return fmt.Errorf("page %d: element %d is an inline bucket without a page", id, i)
		}
		if depth+1 > maxTreeDepth {
			return fmt.Errorf("page %d: the tree is deeper than %d levels", id, maxTreeDepth)
		}
		if err := w.elements(id, inline, depth+1, keyRange{}); err != nil {
			return err
		}
	}
	return nil
}

// branch checks the count elements of branch page id, held in buf, and
// the pages they name. Child i holds the keys from element i's key up to
// element i+1's; the first child's lower bound is the page's own, since a
// key below every branch key is inserted into the first child.
func (w *pageWalk) branch(id uint64, buf []byte, count, depth int, r keyRange) error {
	le := binary.NativeEndian
	key := func(i int) []byte {
		off := pageHeaderSize + i*elementSize
		pos, ksize := uint64(le.Uint32(buf[off:])), uint64(le.Uint32(buf[off+4:]))
		if uint64(off)+pos+ksize > uint64(len(buf)) {
			return nil
		}
		return buf[uint64(off)+pos : uint64(off)+pos+ksize]
	}
	var prev []byte
	for i := range count {
		k := key(i)
		if k == nil {
			return fmt.Errorf("page %d: element %d's key is outside the page", id, i)
		}
		if err := r.check(id, i, k, prev); err != nil {
			return err
		}
		prev = k
	}
	for i := range count {
		child := keyRange{lo: key(i), hi: r.hi}
		if i == 0 {
			child.lo = r.lo
		}
		if i+1 < count {
			child.hi = key(i + 1)
		}
		off := pageHeaderSize + i*elementSize
		if err := w.page(le.Uint64(buf[off+8:]), depth+1, child); err != nil {
			return err
		}
	}
	return nil
}
