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

// hugeHeapBytes is how much of the heap heapHugePages prepares: more than
// a first run of 1,000 files uses (~50 MB).
const hugeHeapBytes = 64 << 20

// madvHugePage is MADV_HUGEPAGE.
const madvHugePage = 14

// heapHugePages asks the kernel to back the heap fsgit is about to grow
// with transparent huge pages, where the kernel leaves that to each
// process (/sys/kernel/mm/transparent_hugepage/enabled: madvise). Touching
// a fresh 4 KiB page costs a fault (~11 µs on a small VM: a first run of
// 1,000 files took ~13,700 of them, most in the heap CUE builds); a 2 MiB
// page costs one fault for 512 of them. The Go runtime does not ask for
// huge pages for its heap, so this maps the memory first: a large
// allocation, which the runtime takes from a fresh mapping without
// touching it, is madvised as a whole, and given back to the heap (a
// collection of a heap that holds nothing else yet), whose next
// allocations reuse it. Best effort: anything unexpected (no such
// mapping, madvise refused) leaves the heap as it was; GODEBUG
// disablethp=1 skips it. It returns the madvised range ([0, 0) when none).
func heapHugePages() (lo, hi uintptr) {
	if strings.Contains(os.Getenv("GODEBUG"), "disablethp=1") {
		return 0, 0
	}
	b := make([]byte, hugeHeapBytes)
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
