package startheap

// The unexported functions the tests of package startheap_test call. The
// tests are an external package so that the package keeps its few
// imports in the test binary, and with them its place in the order of
// initialization (TestInitOrder).

// Decide is decide, its plan's fields returned.
func Decide(getenv func(string) (string, bool), thp, overcommit, meminfo, reporting []byte) (ballast, huge, prefault bool) {
	p := decide(getenv, thp, overcommit, meminfo, reporting)
	return p.ballast, p.huge, p.prefault
}

// Arg is arg.
func Arg(cmdline []byte, i int) string { return arg(cmdline, i) }

// MemAvailable is memAvailable.
func MemAvailable(meminfo []byte) int { return memAvailable(meminfo) }

// MappingOf is mappingOf.
func MappingOf(addr uintptr) (lo, hi uintptr) { return mappingOf(addr) }

// ReadFile is readFile.
func ReadFile(path string, max int) ([]byte, error) { return readFile(path, max) }

// The files decide's inputs come from.
const (
	ThpEnabledFile = thpEnabledFile
	OvercommitFile = overcommitFile
	MeminfoFile    = meminfoFile
	ReportingFile  = reportingFile
)

// HugeHeap is hugeHeap.
func HugeHeap(size int) (lo, hi uintptr) { return hugeHeap(size) }

// ReportsFreePages is reportsFreePages.
func ReportsFreePages(order []byte) bool { return reportsFreePages(order) }
