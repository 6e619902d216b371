package main

import "github.com/fsgit/fsgit/internal/startheap"

// evalHeap is the heap vet and plan prepare with huge pages
// (startheap.HugePages): theirs reaches 100–500 MB at 1,000 nodes.
// Apply's and render's heap is prepared before the packages initialize,
// by startheap's init.
const evalHeap = 1 << 30

// heapHugePages backs the next size bytes of the heap with huge pages,
// where that helps and cannot hurt (startheap.HugePages).
func heapHugePages(size int) (lo, hi uintptr) { return startheap.HugePages(size) }
