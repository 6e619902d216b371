package startheap_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/fsgit/fsgit/internal/startheap"
)

// childEnv marks the test binary run as a child process, with the command
// line of an fsgit command, which reports what init did (report) instead
// of running the tests.
const childEnv = "FSGIT_TEST_STARTHEAP_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		report()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// report prints what init did to this process's heap, one "key value"
// line each: text, the part of the executable's text mapping that is
// resident; rss, VmRSS after a collection; hg, whether a 32 MB
// allocation made then lands in a mapping marked for huge pages (the one
// init madvised and gave back, or a fresh one); heap, the bytes allocated
// and live after another collection (the ballast's, if held); gcs, the
// collections while 32 MB of garbage is allocated.
func report() {
	fmt.Printf("text %.3f\n", textResident())
	runtime.GC()
	fmt.Printf("rss %d\n", vmRSS())
	probe := make([]byte, 32<<20)
	fmt.Printf("hg %t\n", hugeFlag(uintptr(unsafe.Pointer(unsafe.SliceData(probe)))))
	runtime.KeepAlive(probe)
	probe = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap %d\n", ms.HeapAlloc)
	runtime.ReadMemStats(&ms)
	n0 := ms.NumGC
	var last []byte
	for done := 0; done < 32<<20; done += 64 << 10 {
		last = make([]byte, 64<<10)
		last[0] = 1
	}
	runtime.KeepAlive(last)
	runtime.ReadMemStats(&ms)
	fmt.Printf("gcs %d\n", ms.NumGC-n0)
}

// hugeFlag reports whether the mapping that holds addr carries VmFlags hg
// (madvised MADV_HUGEPAGE) in /proc/self/smaps.
func hugeFlag(addr uintptr) bool {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return false
	}
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			start, end, _ := strings.Cut(f[0], "-")
			l, err1 := strconv.ParseUint(start, 16, 64)
			h, err2 := strconv.ParseUint(end, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(l) <= addr && addr < uintptr(h)
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Contains(line+" ", " hg ")
		}
	}
	return false
}

// textResident is the part of the executable's text (its r-xp mapping)
// that is resident, from /proc/self/smaps (0 if unknown).
func textResident() float64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	in := false
	size := 0
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = f[1] == "r-xp" && f[5] == exe
			continue
		}
		if !in || len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Size:":
			size = n
		case "Rss:":
			if size > 0 {
				return float64(n) / float64(size)
			}
		}
	}
	return 0
}

// vmRSS is VmRSS of /proc/self/status in bytes (0 if unknown).
func vmRSS() int {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.Atoi(f[0])
				return kb << 10
			}
		}
	}
	return 0
}

// childReport is what report printed.
type childReport struct {
	hg             bool
	heap, rss, gcs int
	text           float64
}

// runChild runs the test binary with args as its command line (argv[1]
// on) and env added to the environment, less GOGC, GOMEMLIMIT and
// GODEBUG, and returns its report and its standard error.
func runChild(t *testing.T, args []string, env ...string) (childReport, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{childEnv + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %q %q: %v\n%s%s", args, env, err, stdout.String(), stderr.String())
	}
	var r childReport
	for _, line := range strings.Split(stdout.String(), "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(v)
		switch k {
		case "hg":
			r.hg = v == "true"
		case "heap":
			r.heap = n
		case "rss":
			r.rss = n
		case "gcs":
			r.gcs = n
		case "text":
			r.text, _ = strconv.ParseFloat(v, 64)
		}
	}
	return r, stderr.String()
}

// skipUnlessAble skips a test of init's effects where decide would do
// nothing on this machine: strict overcommit or too little memory; and
// returns whether decide gives this machine huge pages (the kernel leaves
// them to the process and reports no free memory to a hypervisor).
func skipUnlessAble(t *testing.T) (huge bool) {
	t.Helper()
	overcommit, _ := startheap.ReadFile(startheap.OvercommitFile, 64)
	meminfo, _ := startheap.ReadFile(startheap.MeminfoFile, 16<<10)
	thp, _ := startheap.ReadFile(startheap.ThpEnabledFile, 256)
	reporting, _ := startheap.ReadFile(startheap.ReportingFile, 64)
	ballast, huge, _ := startheap.Decide(func(string) (string, bool) { return "", false }, thp, overcommit, meminfo, reporting)
	if !ballast {
		t.Skipf("strict overcommit or too little memory (overcommit %q, %d bytes available)", overcommit, startheap.MemAvailable(meminfo))
	}
	if huge != (bytes.Contains(thp, []byte("[madvise]")) && !startheap.ReportsFreePages(reporting)) {
		t.Fatalf("decide gives huge pages %t with the kernel's mode %q and free page reporting %q", huge, thp, reporting)
	}
	return huge
}

// TestApply: with apply or render as its first argument, the process
// holds the ballast through collections (Size bytes live, not resident),
// so that 32 MB of garbage is allocated without a collection, a large
// allocation lands in the heap init marked for huge pages, and the
// executable's text is resident. Every other command line (TestOthers)
// gets none of it, which is what makes these checks able to fail.
func TestApply(t *testing.T) {
	huge := skipUnlessAble(t)
	for _, cmd := range []string{"apply", "render"} {
		r, _ := runChild(t, []string{cmd, "--once", "--noop"})
		if r.heap < startheap.Size {
			t.Errorf("%s: %d bytes live after a collection, want the ballast's %d at least", cmd, r.heap, startheap.Size)
		}
		if r.rss >= startheap.Size/2 {
			t.Errorf("%s: %d bytes resident: the ballast is touched", cmd, r.rss)
		}
		if r.gcs != 0 {
			t.Errorf("%s: 32 MB of garbage took %d collections, want none", cmd, r.gcs)
		}
		if r.hg != huge {
			t.Errorf("%s: the heap marked for huge pages: %t, want %t", cmd, r.hg, huge)
		}
		// MADV_POPULATE_READ is Linux 5.14's.
		if r.text < 0.99 && kernelAtLeast(5, 14) {
			t.Errorf("%s: %.0f %% of the executable's text is resident, want all of it", cmd, 100*r.text)
		}
	}
}

// kernelAtLeast reports whether the kernel's release is major.minor or
// later.
func kernelAtLeast(major, minor int) bool {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(string(release), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// TestOthers: the agent, every other command, a test binary and command
// lines whose first argument is not exactly apply or render are left
// alone.
func TestOthers(t *testing.T) {
	skipUnlessAble(t)
	for _, args := range [][]string{nil, {"agent"}, {"version"}, {"vet"}, {"applyx"}, {"Apply"}, {"-test.run=^$"}, {"", "apply"}, {"--help", "apply"}} {
		r, _ := runChild(t, args)
		if r.heap >= startheap.Size || r.gcs == 0 || r.hg || r.text >= 0.99 {
			t.Errorf("%q: %d bytes live, %d collections for 32 MB of garbage, huge pages %t, %.0f %% of the text resident; want neither ballast nor huge pages nor prefault",
				args, r.heap, r.gcs, r.hg, 100*r.text)
		}
	}
}

// TestOptOuts: GOGC or GOMEMLIMIT set means no ballast (the huge pages
// still), GODEBUG disablethp=1 no huge pages (the ballast still).
func TestOptOuts(t *testing.T) {
	huge := skipUnlessAble(t)
	for _, env := range []string{"GOGC=100", "GOMEMLIMIT=1GiB"} {
		r, _ := runChild(t, []string{"apply"}, env)
		if r.heap >= startheap.Size || r.gcs == 0 {
			t.Errorf("%s: %d bytes live, %d collections for 32 MB of garbage; want no ballast", env, r.heap, r.gcs)
		}
		if r.hg != huge {
			t.Errorf("%s: the heap marked for huge pages: %t, want %t", env, r.hg, huge)
		}
	}
	r, _ := runChild(t, []string{"apply"}, "GODEBUG=disablethp=1")
	if r.hg {
		t.Errorf("GODEBUG=disablethp=1: the heap is marked for huge pages")
	}
	if r.heap < startheap.Size || r.gcs != 0 {
		t.Errorf("GODEBUG=disablethp=1: %d bytes live, %d collections for 32 MB of garbage; want the ballast", r.heap, r.gcs)
	}
}

// TestInitOrder: the package initializes right after syscall, before time,
// os and any package outside the standard library's runtime core, which
// is what lets it prepare the heap before they touch it.
func TestInitOrder(t *testing.T) {
	skipUnlessAble(t)
	_, stderr := runChild(t, []string{"apply"}, "GODEBUG=inittrace=1")
	order := map[string]int{}
	n := 0
	for _, line := range strings.Split(stderr, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" {
			order[f[1]] = n
			n++
		}
	}
	self, ok := order["github.com/fsgit/fsgit/internal/startheap"]
	if !ok {
		t.Fatalf("no inittrace line for this package:\n%s", stderr)
	}
	if sys, ok := order["syscall"]; !ok || sys > self {
		t.Errorf("syscall initialized at %d (%t), this package at %d", sys, ok, self)
	}
	for _, pkg := range []string{"time", "os", "testing"} {
		if i, ok := order[pkg]; !ok || i < self {
			t.Errorf("%s initialized at %d (%t), before this package (%d)", pkg, i, ok, self)
		}
	}
}

func TestDecide(t *testing.T) {
	const (
		madvise = "always [madvise] never\n"
		always  = "[always] madvise never\n"
		never   = "always madvise [never]\n"
		plenty  = "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   20000000 kB\n"
		scarce  = "MemTotal:       24000000 kB\nMemAvailable:     200000 kB\n"
	)
	for _, c := range []struct {
		env                                 []string
		thp, overcommit, meminfo, reporting string
		ballast, huge, prefault             bool
	}{
		{nil, madvise, "0\n", plenty, "", true, true, true},
		{nil, madvise, "1\n", plenty, "", true, true, true},
		{nil, madvise, "2\n", plenty, "", false, false, true},
		{nil, madvise, "", plenty, "", false, false, true},
		{nil, madvise, "0\n", scarce, "", false, false, false},
		{nil, madvise, "0\n", "", "", false, false, false},
		{nil, always, "0\n", plenty, "", true, false, true},
		{nil, never, "0\n", plenty, "", true, false, true},
		{nil, "", "0\n", plenty, "", true, false, true},
		{[]string{"GOGC=100"}, madvise, "0\n", plenty, "", false, true, true},
		{[]string{"GOGC=off"}, madvise, "0\n", plenty, "", false, true, true},
		{[]string{"GOMEMLIMIT=1GiB"}, madvise, "0\n", plenty, "", false, true, true},
		{[]string{"GOGC="}, madvise, "0\n", plenty, "", true, true, true},
		{[]string{"GODEBUG=madvdontneed=1,disablethp=1"}, madvise, "0\n", plenty, "", true, false, true},
		{[]string{"GODEBUG=disablethp=0"}, madvise, "0\n", plenty, "", true, true, true},
		// Free page reporting: at order 9 (2 MiB) or any other, none
		// while no device registered (-1 unsigned), unreadable.
		{nil, madvise, "0\n", plenty, "9\n", true, false, true},
		{nil, madvise, "0\n", plenty, "0\n", true, false, true},
		{nil, madvise, "0\n", plenty, "10\n", true, false, true},
		{nil, madvise, "0\n", plenty, "4294967295\n", true, true, true},
		{nil, madvise, "0\n", plenty, "-1\n", true, true, true},
		{nil, madvise, "0\n", plenty, "x\n", true, true, true},
		{[]string{"GOGC=100"}, madvise, "0\n", plenty, "9\n", false, false, true},
	} {
		getenv := func(key string) (string, bool) {
			for _, kv := range c.env {
				if k, v, _ := strings.Cut(kv, "="); k == key {
					return v, true
				}
			}
			return "", false
		}
		ballast, huge, prefault := startheap.Decide(getenv, []byte(c.thp), []byte(c.overcommit), []byte(c.meminfo), []byte(c.reporting))
		if ballast != c.ballast || huge != c.huge || prefault != c.prefault {
			t.Errorf("env %q, thp %q, overcommit %q, meminfo %q, reporting %q: ballast %t, huge %t, prefault %t; want %t, %t, %t",
				c.env, c.thp, c.overcommit, c.meminfo, c.reporting, ballast, huge, prefault, c.ballast, c.huge, c.prefault)
		}
	}
}

func TestArg(t *testing.T) {
	cmdline := []byte("/usr/bin/fsgit\x00apply\x00--once\x00")
	for i, want := range []string{"/usr/bin/fsgit", "apply", "--once", ""} {
		if got := startheap.Arg(cmdline, i); got != want {
			t.Errorf("arg %d = %q, want %q", i, got, want)
		}
	}
	// Cut short by the read's limit: not an argument.
	if got := startheap.Arg([]byte("/usr/bin/fsgit\x00app"), 1); got != "" {
		t.Errorf("a truncated argument: %q", got)
	}
}

func TestMemAvailable(t *testing.T) {
	for in, want := range map[string]int{
		"MemTotal: 2 kB\nMemAvailable:   12345 kB\n": 12345 << 10,
		"MemAvailable: 7 kB":                         7 << 10,
		"MemAvailable: 7 MB\n":                       0,
		"MemAvailable: x kB\n":                       0,
		"MemFree: 7 kB\n":                            0,
	} {
		if got := startheap.MemAvailable([]byte(in)); got != want {
			t.Errorf("startheap.MemAvailable(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestMappingOf(t *testing.T) {
	b := make([]byte, 8<<20)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if lo, hi := startheap.MappingOf(addr); !(lo <= addr && addr < hi) {
		t.Errorf("startheap.MappingOf(%#x) = %#x-%#x", addr, lo, hi)
	}
	runtime.KeepAlive(b)
	if lo, hi := startheap.MappingOf(1); lo != hi {
		t.Errorf("startheap.MappingOf(1) = %#x-%#x, want none", lo, hi)
	}
}

// TestHugeHeap: hugeHeap marks a fresh mapping that holds the size asked
// for, and a large allocation made afterwards lands in it. It runs where
// decide would not use it (free page reporting), so that the mechanism is
// tested on every machine whose kernel leaves huge pages to the process.
func TestHugeHeap(t *testing.T) {
	thp, _ := startheap.ReadFile(startheap.ThpEnabledFile, 256)
	if !bytes.Contains(thp, []byte("[madvise]")) {
		t.Skipf("the kernel does not leave huge pages to the process: %q", thp)
	}
	if avail := startheap.MemAvailable(mustRead(t, startheap.MeminfoFile)); avail/4 < startheap.Size {
		t.Skipf("only %d bytes available", avail)
	}
	lo, hi := startheap.HugeHeap(startheap.Size)
	if hi-lo < startheap.Size {
		t.Fatalf("madvised %#x-%#x, want at least %d bytes", lo, hi, startheap.Size)
	}
	if !hugeFlag(lo) {
		t.Errorf("the mapping at %#x is not marked for huge pages", lo)
	}
	probe := make([]byte, 32<<20)
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(probe))); p < lo || p >= hi {
		t.Errorf("a 32 MB allocation at %#x, outside the madvised %#x-%#x", p, lo, hi)
	}
	runtime.KeepAlive(probe)
}

// TestReportsFreePages: this kernel's free page reporting file, when it
// has one, reads as the kernel writes it (an order of pages, or -1 as an
// unsigned number while no device reports), and FreePageReporting, which
// reads it, says reporting is on exactly for an order.
func TestReportsFreePages(t *testing.T) {
	b, err := os.ReadFile(startheap.ReportingFile)
	if err != nil {
		t.Skipf("no free page reporting here: %v", err)
	}
	text := strings.TrimSpace(string(b))
	t.Logf("%s: %s", startheap.ReportingFile, text)
	n, err := strconv.ParseUint(text, 10, 32)
	switch {
	case err != nil:
		t.Fatalf("%s: %q is not an unsigned number: %v", startheap.ReportingFile, b, err)
	case n == 1<<32-1:
		if startheap.FreePageReporting() {
			t.Errorf("no reporting device (order %d), yet FreePageReporting says reporting is on", n)
		}
	case n > 20:
		t.Fatalf("%s: order %d is not a page order (MAX_PAGE_ORDER is 10 on x86-64)", startheap.ReportingFile, n)
	default:
		if !startheap.FreePageReporting() {
			t.Errorf("reporting at order %d, yet FreePageReporting says it is off", n)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
