// Package file implements the host filesystem kinds: file, directory and
// symlink.
//
// Observation is cheap and never writes: an lstat, and for a file whose
// content is managed a sha256 of what is on disk (configuration files are
// small). A field that differs is corrected alone: a wrong mode is a chmod,
// a wrong owner a chown, and content that is already right is never
// rewritten, so a second run makes no change and no write.
//
// Content is written atomically (internal/atomicfile): a temporary file in
// the same directory, written, owned and moded, fsynced, renamed over the
// target, and the directory fsynced. A crash at any moment leaves the old
// content or the new, never a mix; the next run converges.
//
// Every look and every write goes through the run's filesystem
// ([reconciler.Env.FS]): under --root, each system call resolves its path
// inside the root (openat through os.Root), so a symlink on the way that
// leads out of the root fails the resource, whenever it was planted, and
// no check can be outrun by a sibling creating a directory.
//
// Owner and group names are resolved from <root>/etc/passwd and
// <root>/etc/group when the run has a root that holds them, else through the
// host's user database (os/user).
//
// Removal (ensure absent, or pruning a resource that left the catalog) is
// safe when nothing can be lost: a symlink, an empty directory, a file whose
// content fsgit manages and finds intact. Anything else is destructive and
// runs only where the resource allows destroy.
package file
