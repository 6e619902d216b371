// Package startheap prepares a short-lived fsgit command (apply, render)
// before the rest of the program initializes: a collector ballast, a heap
// backed by transparent huge pages (not where the kernel reports free
// memory to a hypervisor, which takes back exactly the 2 MiB blocks huge
// pages are made of), and the executable's read-only pages mapped in at
// once.
//
// A fresh Go process starts with a heap of a few MB and a collection goal
// of 4 MB; by the time a command's code runs, the runtime and the
// packages' initialization (cobra, CUE, ...) have touched ~5 MB of heap in
// 4 KiB pages, one fault each, and a 2 MiB region that already has 4 KiB
// pages gets no huge page afterwards. Doing the preparation here, in a
// package that imports only runtime, syscall, unsafe and strconv (none of
// which initializes late), places it before
// all of that: the linker orders initialization by import path among the
// packages whose imports are initialized, and this one is ready right
// after syscall, so it runs before time, os and every other module's
// package (GODEBUG=inittrace=1 shows the order; TestInitOrder checks it).
//
// cmd/fsgit imports it for its initialization, and for [HugePages],
// which vet and plan call once they know how large a heap they build. Its
// init reads the command from /proc/self/cmdline and acts only when
// the first argument is exactly "apply" or "render", so the agent (whose
// heap lives on), every other command and test binaries (whose first
// argument is a -test flag) are untouched. The whole init takes ~5 ms of
// wall clock (GODEBUG=inittrace=1 on a loaded 2-core VM), the prefault
// ~2 ms of it; a no-op apply of 1,000 files spends ~25 % less CPU.
package startheap
