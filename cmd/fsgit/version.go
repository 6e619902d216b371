//go:build !lean

package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/pass"
)

// versionInfo is what fsgit version prints: the binary's module version,
// the schema version it speaks, the Go toolchain that built it and the
// VCS revision it was built from (runtime/debug's build info).
type versionInfo struct {
	Version       string `json:"version"`
	SchemaVersion string `json:"schemaVersion"`
	GoVersion     string `json:"goVersion"`
	Revision      string `json:"revision,omitempty"`
	// RevisionTime is the commit's time, RFC 3339.
	RevisionTime time.Time `json:"revisionTime,omitzero"`
	// Modified is set when the working tree had changes at build time.
	Modified bool   `json:"modified,omitempty"`
	Platform string `json:"platform"`
}

// buildVersion reads the build info of the running binary.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", SchemaVersion: desired.SchemaVersion(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.RevisionTime = t.UTC()
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// line is the version on one line, as --version prints it.
func (v versionInfo) line() string {
	s := fmt.Sprintf("fsgit %s (schema %s, %s, %s", v.Version, v.SchemaVersion, v.GoVersion, v.Platform)
	if v.Revision != "" {
		s += ", revision " + v.Revision
		if v.Modified {
			s += " with local changes"
		}
	}
	return s + ")"
}

// writeText prints one field a line.
func (v versionInfo) writeText(w io.Writer) error {
	_, err := fmt.Fprintln(w, v.line())
	return err
}

func newVersionCmd() *cobra.Command {
	var output string
	var identity bool
	cmd := &cobra.Command{
		Use:   "version [-o text|json|yaml]",
		Short: "Print fsgit's version, the schema version it speaks, its Go version and VCS revision",
		Long: `version prints the binary's version, the schema version it speaks (a site's
schemaVersion must match it), the Go version that built it and, when it was built
from a git checkout, the commit it was built from. fsgit --version prints the same
line.`,
		Example: `  fsgit version
  fsgit version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identity {
				// What the front for cached runs is stamped with
				// (scripts/build.sh): the build whose cached catalogs
				// it may run.
				id, ok := pass.BuildIdentity()
				if !ok {
					return couldNotRun(errors.New("this fsgit build cannot be identified"))
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), id)
				return err
			}
			v := buildVersion()
			if structured(output) {
				return writeOut(cmd.OutOrStdout(), output, v)
			}
			return v.writeText(cmd.OutOrStdout())
		},
	}
	addOutputFlag(cmd, &output, outText)
	cmd.Flags().BoolVar(&identity, "build-identity", false, "print the identity the compiled catalog cache is keyed by")
	_ = cmd.Flags().MarkHidden("build-identity")
	return cmd
}
