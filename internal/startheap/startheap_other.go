//go:build !linux

package startheap

// MinHugePages is the least heap worth preparing with HugePages.
const MinHugePages = 16 << 20

// HugePages does nothing outside Linux.
func HugePages(int) (lo, hi uintptr) { return 0, 0 }

// FreePageReporting reports whether the kernel reports free memory to a
// hypervisor: Linux only.
func FreePageReporting() bool { return false }
