package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestApplyGC: the ballast applyGC returns is applyBallast bytes that are
// not resident, and while it is held 32 MB of garbage is allocated without
// a collection, where without it the same garbage is collected; GOGC or
// GOMEMLIMIT in the environment, or that much idle heap, means no
// ballast (as does strict overcommit or too little memory, which skip
// the test). It runs in a child process, whose heap is fresh as a command's
// is (other tests of this package run commands in-process).
func TestApplyGC(t *testing.T) {
	if o, err := os.ReadFile(overcommitFile); err != nil || strings.TrimSpace(string(o)) == "2" {
		t.Skipf("strict overcommit or unknown (%s: %q, %v)", overcommitFile, o, err)
	}
	if memAvailable()/4 < applyBallast {
		t.Skipf("only %d bytes available", memAvailable())
	}
	if os.Getenv("FSGIT_TEST_GC_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestApplyGC$", "-test.v")
		env := []string{"FSGIT_TEST_GC_CHILD=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestApplyGC") {
			t.Fatalf("the child process: %v\n%s", err, out)
		}
		return
	}
	t.Setenv("GOGC", "100")
	if b := applyGC(); b != nil {
		t.Errorf("with GOGC set, a ballast of %d bytes", len(b))
	}
	os.Unsetenv("GOGC")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if b := applyGC(); b != nil {
		t.Errorf("with GOMEMLIMIT set, a ballast of %d bytes", len(b))
	}
	os.Unsetenv("GOMEMLIMIT")

	before := residentBytes(t)
	ballast := applyGC()
	if len(ballast) != applyBallast {
		t.Fatalf("a ballast of %d bytes, want %d", len(ballast), applyBallast)
	}
	if grew := residentBytes(t) - before; grew > applyBallast/8 {
		t.Errorf("the ballast made %d bytes resident", grew)
	}
	runtime.GC()
	if n := collectionsFor(32 << 20); n != 0 {
		t.Errorf("with the ballast, 32 MB of garbage took %d collections, want none", n)
	}
	runtime.KeepAlive(ballast)
	ballast = nil
	runtime.GC()
	// The check above can fail: without the ballast, the same garbage
	// is collected.
	if n := collectionsFor(32 << 20); n == 0 {
		t.Errorf("without the ballast, 32 MB of garbage took no collection")
	}
	// The ballast's memory is idle now: a second ballast would be
	// carved from it and zeroed.
	if b := applyGC(); b != nil {
		t.Errorf("with %d bytes idle in the heap, a ballast of %d bytes", applyBallast, len(b))
	}
}

// collectionsFor allocates size bytes of garbage, 64 KiB at a time, and
// returns how many collections ran meanwhile.
func collectionsFor(size int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n0 := ms.NumGC
	chunk := 64 << 10
	var last []byte
	for done := 0; done < size; done += chunk {
		last = make([]byte, chunk)
		last[0] = 1
	}
	runtime.KeepAlive(last)
	runtime.ReadMemStats(&ms)
	return ms.NumGC - n0
}

// residentBytes is VmRSS of /proc/self/status in bytes.
func residentBytes(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return kb << 10
				}
			}
		}
	}
	t.Fatalf("no VmRSS in /proc/self/status")
	return 0
}
