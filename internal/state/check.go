package state

import (
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
// that what bbolt reads through its memory map is inside the file: at
// least one meta page with its magic, version and checksum intact, and for
// the meta bbolt will use (the valid one with the highest transaction id)
// a sane page size, a file at least as long as the pages it names (the
// high water mark), and a root and a freelist page inside those, of the
// right type, the freelist's entries inside its pages. A file that fails
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
	if m.freelist == pgidNoFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.hwm {
		return fmt.Errorf("freelist page %d is outside pages 2 to %d", m.freelist, m.hwm-1)
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
			case id == m.root || (id >= m.freelist && id <= m.freelist+overflow):
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
