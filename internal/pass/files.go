package pass

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// File is one of fsgit's own files (the state, the run summary, the
// catalog cache): a name in the filesystem it is written through.
type File struct {
	FS   *rootfs.FS
	Name string
}

// String returns the file's host path.
func (o File) String() string { return o.FS.HostPath(o.Name) }

// UnderRoot returns where one of fsgit's own files goes: the flag's value,
// a host path, if set; else def in the root's filesystem (the host's
// without --root), confined to it like every managed path.
func UnderRoot(root *rootfs.FS, flag, def string) File {
	if flag != "" {
		return File{rootfs.New(""), flag}
	}
	return File{root, def}
}

// SandboxRoot returns the absolute --root ("" for none), creating it
// unless in noop, where a missing root is left missing. A root that is not
// a directory is refused before anything runs.
func SandboxRoot(root string, noop bool) (string, error) {
	if root == "" {
		return "", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve --root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist) && noop:
		// Nothing under it exists yet: every path is observed as absent.
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", fmt.Errorf("create --root: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("use --root: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("--root %s is a %s, not a directory", root, fileType(fi))
	}
	return abs, nil
}

// fileType names what fi is, for a message.
func fileType(fi os.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "regular file"
	case m&os.ModeDevice != 0:
		return "device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "non-directory"
}

// Summary is the last-run summary file, after Puppet's
// last_run_summary.yaml: what ran, when, how long, and counts per outcome.
type Summary struct {
	Version struct {
		Fsgit  string `json:"fsgit"`
		Config string `json:"config"`
	} `json:"version"`
	Site string `json:"site,omitempty"`
	Node string `json:"node"`
	Role string `json:"role,omitempty"`
	// Time says when the run started and finished (RFC 3339) and how long
	// it took (seconds).
	Time struct {
		Started  time.Time       `json:"started,omitzero"`
		Finished time.Time       `json:"finished,omitzero"`
		Duration jsondoc.Seconds `json:"duration,omitzero"`
	} `json:"time"`
	Resources reconciler.Summary `json:"resources"`
	Noop      bool               `json:"noop"`
	Stopped   string             `json:"stopped,omitempty"`
	ExitCode  int                `json:"exitCode"`
}

// WriteSummary writes the last-run summary atomically: a temporary file
// in the same directory, synced, renamed over the old one, and the
// directory synced.
func WriteSummary(path File, rep *reconciler.Report) error {
	var s Summary
	s.Version.Fsgit = fsgitVersion()
	s.Version.Config = rep.Revision
	s.Site, s.Node, s.Role = rep.Site, rep.Node, rep.Role
	s.Time.Started = rep.Started.UTC()
	s.Time.Finished = rep.Started.Add(rep.Duration.D()).UTC()
	s.Time.Duration = rep.Duration
	s.Resources = rep.Summary()
	s.Noop, s.Stopped, s.ExitCode = rep.Noop, rep.Stopped, rep.ExitCode()
	b, err := s.Encode()
	if err != nil {
		return err
	}
	if err := path.FS.MkdirAll(filepath.Dir(path.Name), 0o755); err != nil {
		return fmt.Errorf("write run summary: %w", err)
	}
	if err := atomicfile.WriteFile(path.FS, path.Name, b, atomicfile.Options{UID: -1, GID: -1, Mode: 0o644}); err != nil {
		return fmt.Errorf("write run summary %s: %w", path, err)
	}
	return nil
}

// Encode is the summary as written: indented, one line at the end.
func (s *Summary) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode run summary: %w", err)
	}
	return append(b, '\n'), nil
}

// fsgitVersion returns the module version the binary was built from.
func fsgitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
