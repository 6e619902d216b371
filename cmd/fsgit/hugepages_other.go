//go:build !linux

package main

// Heap sizes heapHugePages would prepare, by command.
const (
	applyHeap = 64 << 20
	evalHeap  = 1 << 30
)

// heapHugePages does nothing outside Linux.
func heapHugePages(int) (lo, hi uintptr) { return 0, 0 }
