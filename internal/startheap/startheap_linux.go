//go:build linux

package startheap

import (
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// Size is the ballast's size and the heap size backed by huge pages: more
// than a first run of 1,000 files uses (~50 MB), so that the first
// collection comes when the allocations have about filled the huge pages.
const Size = 64 << 20

// madvHugePage is MADV_HUGEPAGE.
const madvHugePage = 14

// The files init reads to know whether it should act, and whether it may.
const (
	cmdlineFile    = "/proc/self/cmdline"
	thpEnabledFile = "/sys/kernel/mm/transparent_hugepage/enabled"
	overcommitFile = "/proc/sys/vm/overcommit_memory"
	meminfoFile    = "/proc/meminfo"
	mapsFile       = "/proc/self/maps"
	// reportingFile is the order of the free blocks the kernel reports to
	// the hypervisor (free page reporting: virtio-balloon, Hyper-V).
	reportingFile = "/sys/module/page_reporting/parameters/page_reporting_order"
)

func init() {
	cmdline, err := readFile(cmdlineFile, 8<<10)
	if err != nil || !prepared(arg(cmdline, 1)) {
		return
	}
	thp, _ := readFile(thpEnabledFile, 256)
	overcommit, _ := readFile(overcommitFile, 64)
	meminfo, _ := readFile(meminfoFile, 16<<10)
	reporting, _ := readFile(reportingFile, 64)
	p := decide(syscall.Getenv, thp, overcommit, meminfo, reporting)
	if p.ballast {
		hold(make([]byte, Size))
	}
	// After the ballast, so that the ballast does not take the huge
	// pages' memory, which the collection gives back for reuse.
	if p.huge {
		hugeHeap(Size)
	}
	if p.prefault {
		prefaultExecutable()
	}
}

// prepared reports whether cmd is a command init prepares: apply and
// render, which evaluate a site (or read its cached catalog) and exit.
func prepared(cmd string) bool {
	return cmd == "apply" || cmd == "render"
}

// plan is what init does.
type plan struct {
	// ballast: hold Size bytes that the collector counts as live.
	ballast bool
	// huge: back Size bytes of fresh heap with huge pages.
	huge bool
	// prefault: map the executable's read-only pages in at once.
	prefault bool
}

// decide returns what init does, from the environment (getenv, as
// syscall.Getenv), the kernel's huge page mode (thp, the contents of
// thpEnabledFile), its overcommit policy (overcommit), /proc/meminfo
// (meminfo) and its free page reporting order (reporting, the contents of
// reportingFile). Nothing when a quarter of MemAvailable is less than Size
// (the heap may grow by that much more before its first collection, and
// the executable's pages take ~30 MB). Neither the ballast nor the huge
// pages under strict overcommit (vm.overcommit_memory 2, or unknown:
// there reserving the memory is committing it, and a failed allocation
// is fatal); the executable's pages are its file's, and commit nothing.
//
// The ballast: not when GOGC or GOMEMLIMIT is set (they win; a ballast
// would count in GOMEMLIMIT's budget). The huge pages: only where the
// kernel leaves them to each process ([madvise]; not always, where every
// process has them already, nor never), not where the kernel reports free
// memory to a hypervisor (reportsFreePages), and not with GODEBUG
// disablethp=1.
func decide(getenv func(string) (string, bool), thp, overcommit, meminfo, reporting []byte) plan {
	if memAvailable(meminfo)/4 < Size {
		return plan{}
	}
	if o := trimSpace(overcommit); len(o) == 0 || string(o) == "2" {
		return plan{prefault: true}
	}
	gogc, _ := getenv("GOGC")
	limit, _ := getenv("GOMEMLIMIT")
	godebug, _ := getenv("GODEBUG")
	return plan{
		ballast:  gogc == "" && limit == "",
		huge:     !contains(godebug, "disablethp=1") && contains(string(thp), "[madvise]") && !reportsFreePages(reporting),
		prefault: true,
	}
}

// hold keeps b reachable for the rest of the process's life, without a
// package variable: a goroutine holds it on its stack and waits forever
// on a channel that nothing else can reach. Every goroutine's stack is a
// root of the collector, and b is live in that frame (it is used after
// the receive, which the compiler cannot prove never returns), so b is
// never collected. The goroutine costs a few KB of stack and nothing
// else; the runtime's deadlock detection is unaffected (a blocked
// goroutine neither runs nor counts as running, and apply's main goroutine
// runs until the process exits). Only for a short-lived command: the
// goroutine never ends. (The experimental goroutine leak profile,
// GOEXPERIMENT=goroutineleakprofile, would list it as leaked.)
func hold(b []byte) {
	never := make(chan struct{})
	go func() {
		<-never
		runtime.KeepAlive(b)
	}()
}

// hugeHeap backs size bytes of fresh heap with huge pages: a large
// allocation, which the runtime takes from a fresh mapping without
// touching it, is madvised (MADV_HUGEPAGE) with the whole mapping that
// holds it and given back to the heap by a collection (of a heap with
// next to nothing live), whose next allocations reuse it. A
// touched 4 KiB page costs a fault (~11 µs on a small VM); a 2 MiB page
// costs one fault for 512 of them. Anything unexpected (no such mapping,
// madvise refused) leaves the heap as it was. It returns the madvised
// range ([0, 0) when none).
func hugeHeap(size int) (lo, hi uintptr) {
	b := make([]byte, size)
	lo, hi = mappingOf(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	if lo != hi {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, madvHugePage); errno != 0 {
			lo, hi = 0, 0
		}
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
	return lo, hi
}

// MinHugePages is the least heap worth preparing with HugePages.
const MinHugePages = 16 << 20

// HugePages backs the next size bytes of the heap with transparent huge
// pages, for a command that builds a large heap once its input is known
// (vet and plan: 100-500 MB at 1,000 nodes), as init does for apply and
// render. Best effort, and only where it helps and cannot hurt: not when
// the kernel gives huge pages to every process already (always) or to
// none (never), not under strict overcommit (vm.overcommit_memory 2,
// where reserving the size could fail the allocation), not with GODEBUG
// disablethp=1, not where the kernel reports free memory to a hypervisor
// (reportsFreePages), not beyond a quarter of MemAvailable (size is cut to
// that), not below MinHugePages, and not when the heap already has that
// much idle memory: the allocation would come from there and be zeroed,
// touching every page (1.8 s for 1 GB; a second call in one process, as
// tests that run vet in-process make). Not for the agent: its heap lives
// on, and the pages it frees would split the huge ones. It returns the
// madvised range ([0, 0) when none).
func HugePages(size int) (lo, hi uintptr) {
	if godebug, _ := syscall.Getenv("GODEBUG"); contains(godebug, "disablethp=1") {
		return 0, 0
	}
	if thp, err := readFile(thpEnabledFile, 256); err != nil || !contains(string(thp), "[madvise]") {
		return 0, 0
	}
	if o, err := readFile(overcommitFile, 64); err != nil || len(trimSpace(o)) == 0 || string(trimSpace(o)) == "2" {
		return 0, 0
	}
	if reporting, _ := readFile(reportingFile, 64); reportsFreePages(reporting) {
		return 0, 0
	}
	meminfo, _ := readFile(meminfoFile, 16<<10)
	if avail := memAvailable(meminfo); avail/4 < size {
		size = avail / 4
	}
	if size < MinHugePages {
		return 0, 0
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapIdle >= uint64(size) {
		return 0, 0
	}
	return hugeHeap(size)
}

// reportsFreePages reports whether the kernel reports free memory to a
// hypervisor, from the contents of reportingFile: the order of the free
// blocks it reports, which the kernel sets when a device registers for
// them (virtio-balloon with VIRTIO_BALLOON_F_REPORTING, Hyper-V's
// balloon), -1 as an unsigned number while none has; no file, no
// reporting (a kernel without it, or before 5.14, whose order was fixed).
//
// The hypervisor takes back the memory of each block reported, at 2 MiB
// (order 9) by default, exactly the blocks huge pages are made of: the
// guest's next touch of one makes the host fault in all of it again. On
// a 2-core VM with reporting at order 9, touching 64 MB of fresh memory
// took 28 ms in 4 KiB pages every time, and in huge pages either 8-12 ms
// (memory the host still held) or 170-202 ms (0.33-0.40 GB/s: memory it
// had taken back), in 6 and 7 runs of 13; a no-op apply of 1,000 files
// with a few seconds' pause before each run took 75 ms with huge pages
// and 43 ms without, a first run 408 ms and 233 ms.
func reportsFreePages(order []byte) bool {
	n, err := strconv.ParseUint(string(trimSpace(order)), 10, 32)
	return err == nil && n < 64
}

// FreePageReporting reports whether this kernel reports free memory to a
// hypervisor (reportsFreePages), where neither init nor [HugePages] uses
// huge pages.
func FreePageReporting() bool {
	order, _ := readFile(reportingFile, 64)
	return reportsFreePages(order)
}

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14).
const madvPopulateRead = 22

// prefaultExecutable maps in the pages of the executable's read-only
// mappings (its text and read-only data, ~30 MB of fsgit's) with one
// madvise(MADV_POPULATE_READ) each, instead of one page fault for each
// page the run touches (~230 of them after this point, ~11 µs each on a
// small VM; the pages are in the page cache already, the executable
// having just been read). The mappings are those of the file that holds
// this package's read-only data, found in /proc/self/maps by its device
// and inode. A kernel without MADV_POPULATE_READ refuses it (EINVAL),
// which leaves the faults as they were.
func prefaultExecutable() {
	maps, err := readFile(mapsFile, 1<<20)
	if err != nil {
		return
	}
	// A string constant is in the executable's read-only data.
	here := uintptr(unsafe.Pointer(unsafe.StringData(mapsFile)))
	file := ""
	for rest := maps; len(rest) > 0 && file == ""; {
		var line []byte
		line, rest = cutLine(rest)
		if m, ok := parseMapping(line); ok && m.lo <= here && here < m.hi {
			file = m.file
		}
	}
	if file == "" || file[len(file)-2:] == " 0" {
		return // not found, or anonymous memory: no file's
	}
	for len(maps) > 0 {
		var line []byte
		line, maps = cutLine(maps)
		if m, ok := parseMapping(line); ok && m.file == file && (m.perm == "r-xp" || m.perm == "r--p") {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, m.lo, m.hi-m.lo, madvPopulateRead)
		}
	}
}

// mapping is a line of /proc/self/maps.
type mapping struct {
	lo, hi uintptr
	// perm is the permissions: r-xp, rw-p...
	perm string
	// file is the device and inode of the mapped file ("00:00 0" for
	// none).
	file string
}

// parseMapping parses a line of /proc/self/maps.
func parseMapping(line []byte) (mapping, bool) {
	// 00400000-00452000 r-xp 00000000 fd:01 1234   /usr/bin/fsgit
	rng, rest, _ := cut(line, ' ')
	perm, rest, _ := cut(rest, ' ')
	_, rest, _ = cut(rest, ' ') // the offset
	dev, rest, _ := cut(rest, ' ')
	ino, _, _ := cut(rest, ' ')
	start, end, _ := cut(rng, '-')
	lo, err1 := strconv.ParseUint(string(start), 16, 64)
	hi, err2 := strconv.ParseUint(string(end), 16, 64)
	if err1 != nil || err2 != nil || len(perm) != 4 || len(dev) == 0 || len(ino) == 0 {
		return mapping{}, false
	}
	return mapping{lo: uintptr(lo), hi: uintptr(hi), perm: string(perm), file: string(dev) + " " + string(ino)}, true
}

// mappingOf returns the read-write private mapping of this process that
// holds addr, from /proc/self/maps ([0, 0) when none does).
func mappingOf(addr uintptr) (lo, hi uintptr) {
	maps, err := readFile(mapsFile, 1<<20)
	if err != nil {
		return 0, 0
	}
	for len(maps) > 0 {
		var line []byte
		line, maps = cutLine(maps)
		if m, ok := parseMapping(line); ok && m.perm == "rw-p" && m.lo <= addr && addr < m.hi {
			return m.lo, m.hi
		}
	}
	return 0, 0
}

// memAvailable is MemAvailable of meminfo (/proc/meminfo) in bytes, 0
// when it has none.
func memAvailable(meminfo []byte) int {
	const key = "MemAvailable:"
	for len(meminfo) > 0 {
		var line []byte
		line, meminfo = cutLine(meminfo)
		if len(line) < len(key) || string(line[:len(key)]) != key {
			continue
		}
		// MemAvailable:   12345678 kB
		num, unit, _ := cut(trimSpace(line[len(key):]), ' ')
		if string(trimSpace(unit)) != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(string(num), 10, 40)
		if err != nil {
			return 0
		}
		return int(kb) << 10
	}
	return 0
}

// readFile reads up to max bytes of the file at path with syscall alone
// (os is not initialized yet).
func readFile(path string, max int) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, min(max, 4<<10))
	for len(buf) < max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):min(cap(buf), max)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}

// arg returns the i-th NUL-terminated argument of cmdline (the contents
// of /proc/self/cmdline), "" when it has fewer.
func arg(cmdline []byte, i int) string {
	for ; i > 0; i-- {
		_, rest, ok := cut(cmdline, 0)
		if !ok {
			return ""
		}
		cmdline = rest
	}
	a, _, ok := cut(cmdline, 0)
	if !ok {
		return "" // cut short by readFile's limit
	}
	return string(a)
}

// The byte helpers below are not bytes' and strings': those import
// unicode, whose own initialization comes after os and time, and would
// hold this package's back until then (TestInitOrder fails). strconv
// imports nothing that initializes late.

// cut slices b around the first sep.
func cut(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// cutLine returns b's first line, without its newline, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	line, rest, _ = cut(b, '\n')
	return line, rest
}

// trimSpace trims spaces, tabs and newlines around b.
func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// contains reports whether sub is within s.
func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
