//go:build !linux

package main

// heapHugePages does nothing outside Linux.
func heapHugePages() (lo, hi uintptr) { return 0, 0 }
