//go:build !linux

package main

// evalHeap is the heap size heapHugePages would prepare for vet and plan.
const evalHeap = 1 << 30

// heapHugePages does nothing outside Linux.
func heapHugePages(int) (lo, hi uintptr) { return 0, 0 }
