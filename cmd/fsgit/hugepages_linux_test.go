package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestHeapHugePages: the fresh mapping heapHugePages prepares holds the
// heap size it asked for and is marked for huge pages (VmFlags hg in
// /proc/self/smaps), and GODEBUG disablethp=1 leaves the heap alone.
func TestHeapHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("the kernel has no transparent huge pages:", err)
	}
	lo, hi := heapHugePages()
	if hi-lo < hugeHeapBytes {
		t.Fatalf("madvised %#x-%#x, want at least %d bytes", lo, hi, hugeHeapBytes)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	found := false
	for _, line := range strings.Split(string(smaps), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			start, end, _ := strings.Cut(f[0], "-")
			l, err1 := strconv.ParseUint(start, 16, 64)
			h, err2 := strconv.ParseUint(end, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(l) <= lo && lo < uintptr(h)
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			found = true
			if !strings.Contains(line+" ", " hg ") {
				t.Errorf("the mapping at %#x is not marked for huge pages: %s", lo, line)
			}
		}
	}
	if !found {
		t.Errorf("no mapping at %#x in /proc/self/smaps", lo)
	}

	t.Setenv("GODEBUG", "disablethp=1")
	if lo, hi := heapHugePages(); lo != hi {
		t.Errorf("with disablethp=1, madvised %#x-%#x", lo, hi)
	}
}
