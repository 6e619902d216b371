//go:build !lean

package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/startheap"
)

// TestHeapHugePages: the fresh mapping heapHugePages prepares holds the
// heap size it asked for and is marked for huge pages (VmFlags hg in
// /proc/self/smaps); a second call, whose allocation the idle heap would
// serve (and zero, touching every page), does nothing; GODEBUG
// disablethp=1 leaves the heap alone, and so does a size below what is
// worth it. It runs in a child process, whose heap is fresh as a
// command's is (other tests of this package run commands in-process).
func TestHeapHugePages(t *testing.T) {
	const testHeap = 64 << 20
	const thpEnabledFile = "/sys/kernel/mm/transparent_hugepage/enabled"
	if mode, err := os.ReadFile(thpEnabledFile); err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skipf("the kernel does not leave huge pages to the process (%s: %q, %v)", thpEnabledFile, mode, err)
	}
	if startheap.FreePageReporting() {
		t.Skip("the kernel reports free memory to a hypervisor: no huge pages (internal/startheap's TestHugeHeap tests the mechanism)")
	}
	if avail := memAvailableBytes(t); avail/4 < testHeap {
		t.Skipf("only %d bytes available", avail)
	}
	if os.Getenv("FSGIT_TEST_HUGEPAGES_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHeapHugePages$", "-test.v")
		cmd.Env = append(os.Environ(), "FSGIT_TEST_HUGEPAGES_CHILD=1", "GODEBUG=")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestHeapHugePages") {
			t.Fatalf("the child process: %v\n%s", err, out)
		}
		return
	}
	t.Setenv("GODEBUG", "disablethp=1")
	if lo, hi := heapHugePages(testHeap); lo != hi {
		t.Errorf("with disablethp=1, madvised %#x-%#x", lo, hi)
	}
	t.Setenv("GODEBUG", "")

	if lo, hi := heapHugePages(startheap.MinHugePages - 1); lo != hi {
		t.Errorf("below %d bytes, madvised %#x-%#x", startheap.MinHugePages, lo, hi)
	}
	lo, hi := heapHugePages(testHeap)
	if hi-lo < testHeap {
		t.Fatalf("madvised %#x-%#x, want at least %d bytes", lo, hi, testHeap)
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

	if lo, hi := heapHugePages(testHeap); lo != hi {
		t.Errorf("a second call, with the first one's heap idle, madvised %#x-%#x", lo, hi)
	}
}

// TestStartHeapFirst: fsgit links internal/startheap, which prepares
// apply's heap, and it initializes before time, os and the modules fsgit
// uses (GODEBUG=inittrace=1 of this test binary, which has fsgit's
// imports), as it must to do so before they touch the heap.
func TestStartHeapFirst(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	order := map[string]int{}
	for i, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" {
			if _, seen := order[f[1]]; !seen {
				order[f[1]] = i
			}
		}
	}
	self, ok := order["github.com/fsgit/fsgit/internal/startheap"]
	if !ok {
		t.Fatalf("internal/startheap does not initialize:\n%s", out)
	}
	for _, pkg := range []string{"time", "os", "github.com/spf13/cobra", "cuelang.org/go/cue"} {
		if i, ok := order[pkg]; !ok || i < self {
			t.Errorf("%s initialized at line %d (%t), before internal/startheap (%d)", pkg, i, ok, self)
		}
	}
}

// memAvailableBytes is MemAvailable of /proc/meminfo in bytes.
func memAvailableBytes(t *testing.T) int {
	t.Helper()
	info, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			if f := strings.Fields(rest); len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return kb << 10
				}
			}
		}
	}
	t.Skip("no MemAvailable in /proc/meminfo")
	return 0
}
