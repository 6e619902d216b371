package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Heap sizes heapHugePages prepares.
const (
	// evalHeap is for vet and plan, whose heaps reach 100–500 MB at
	// 1,000 nodes. (Apply's and render's heap is prepared before the
	// packages initialize: internal/startheap.)
	evalHeap = 1 << 30
	// minHugeHeap is the least worth preparing.
	minHugeHeap = 16 << 20
)

// madvHugePage is MADV_HUGEPAGE.
const madvHugePage = 14

// The files heapHugePages reads to know whether it may and should.
const (
	thpEnabledFile = "/sys/kernel/mm/transparent_hugepage/enabled"
	overcommitFile = "/proc/sys/vm/overcommit_memory"
	meminfoFile    = "/proc/meminfo"
)

// heapHugePages asks the kernel to back the heap fsgit is about to grow
// with transparent huge pages, where the kernel leaves that to each
// process (/sys/kernel/mm/transparent_hugepage/enabled: madvise), for a
// command that lives briefly and builds a large heap (vet, plan; apply's
// and render's heap is prepared earlier, by internal/startheap).
// Touching a fresh 4 KiB page costs a fault (~11 µs on a small VM: a
// first run of 1,000 files took ~13,700 of them, most in the heap CUE
// builds; vet of 1,000 nodes ~50,000); a 2 MiB page costs one fault for
// 512 of them. The Go runtime does not ask for huge pages for its heap,
// so this maps the memory first: a large allocation of size bytes, which
// the runtime takes from a fresh mapping without touching it, is madvised
// as a whole, and given back to the heap (a collection of a heap that
// holds little yet, ~1 ms), whose next allocations reuse it.
//
// Best effort, and only where it helps and cannot hurt: not when the
// kernel gives huge pages to every process already (always) or to none
// (never), not with strict overcommit (vm.overcommit_memory 2, where
// reserving the size could fail the allocation), not beyond a quarter of
// the memory available, not when the heap already has that much idle
// memory, and not with GODEBUG disablethp=1. Anything
// unexpected (no such mapping, madvise refused) leaves the heap as it
// was. The agent does not call it: its heap lives on, and the pages it
// frees would split the huge ones. It returns the madvised range ([0, 0)
// when none).
func heapHugePages(size int) (lo, hi uintptr) {
	if strings.Contains(os.Getenv("GODEBUG"), "disablethp=1") {
		return 0, 0
	}
	if mode, err := os.ReadFile(thpEnabledFile); err != nil || !bytes.Contains(mode, []byte("[madvise]")) {
		return 0, 0
	}
	if o, err := os.ReadFile(overcommitFile); err != nil || strings.TrimSpace(string(o)) == "2" {
		return 0, 0
	}
	if avail := memAvailable(); avail/4 < size {
		size = avail / 4
	}
	if size < minHugeHeap {
		return 0, 0
	}
	// The allocation must come from a fresh mapping, which the runtime
	// does not touch: with that much idle heap already (a second call in
	// one process: tests run vet and apply in-process) it would come
	// from there, and be zeroed, touching every page (1.8 s for 1 GB).
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapIdle >= uint64(size) {
		return 0, 0
	}
	b := make([]byte, size)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo, hi = mappingOf(addr)
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

// memAvailable is MemAvailable of /proc/meminfo in bytes, 0 when it cannot
// be read.
func memAvailable() int {
	info, err := os.ReadFile(meminfoFile)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(info), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// mappingOf returns the read-write private mapping of this process that
// holds addr, from /proc/self/maps ([0, 0) when none does).
func mappingOf(addr uintptr) (lo, hi uintptr) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1] != "rw-p" {
			continue
		}
		start, end, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(start, 16, 64)
		h, err2 := strconv.ParseUint(end, 16, 64)
		if err1 == nil && err2 == nil && uintptr(l) <= addr && addr < uintptr(h) {
			return uintptr(l), uintptr(h)
		}
	}
	return 0, 0
}
