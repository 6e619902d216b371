//go:build !lean

package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/schema"
)

//go:embed scaffold/*.tmpl
var scaffoldFS embed.FS

// initFlags are the flags of fsgit init.
type initFlags struct {
	site, role, node string
	schemaOnly       bool
}

// scaffoldData fills the scaffold's templates.
type scaffoldData struct {
	Site, Package, Role, Node string
	RoleLabel, NodeLabel      string
	SchemaVersion             string
	Module, LanguageVersion   string
	InstallVersion            string
}

// checkNames refuses a site, role or node name the schema would refuse
// (schema/site.cue), before anything is written.
func checkNames(f initFlags) error {
	for _, c := range []struct{ what, name, re, rule, flag string }{
		{"site", f.site, `^[a-z0-9][a-z0-9-]*$`, "lower case letters, digits and -, starting with a letter or digit", "--site"},
		{"role", f.role, `^[a-z][a-z0-9_]*$`, "lower case letters, digits and _, starting with a letter", "--role"},
		{"node", f.node, `^[a-z0-9][a-z0-9.-]*$`, "lower case letters, digits, . and -, starting with a letter or digit", "--node"},
	} {
		if !regexp.MustCompile(c.re).MatchString(c.name) {
			return fmt.Errorf("init: %s name %q is not valid: %s (pass %s NAME)", c.what, c.name, c.rule, c.flag)
		}
	}
	return nil
}

func newInitCmd() *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init DIR [--site NAME] [--role NAME] [--node NAME]",
		Short: "Make a site repository: a CUE module with the schema, one site with a role and a node, CI",
		Long: `init writes a new site repository in DIR (created if missing; it must not
already hold the files init writes):

  cue.mod/module.cue           the CUE module fsgit loads sites as
  schema/*.cue                 a copy of the schema, for editors and the cue command
                               (fsgit uses its built-in copy)
  sites/NAME/site.cue          one site, with one role and one node
  .gitignore                   keeps clear-text secrets out
  .github/workflows/fsgit.yml  vet on every push, the plan on every pull request
  README.md                    the commands to start with

then vets the site it wrote. With --schema-only it (re)writes schema/ alone, as
after upgrading fsgit.`,
		Example: `  # a repository for site "prod" with node web-1 in role "base"
  fsgit init ./infra --site prod --node web-1
  cd infra && git init && fsgit vet
  # refresh the schema copy after upgrading fsgit
  fsgit init --schema-only ./infra`,
		Args: exactArgs(1, "one directory (DIR)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.site, "site", "", "the site's name (default: DIR's name)")
	fl.StringVar(&f.role, "role", "base", "the role of the first node")
	fl.StringVar(&f.node, "node", "node-1", "the first node's name")
	// A new node's name: nothing to complete it from.
	_ = cmd.RegisterFlagCompletionFunc("node", cobra.NoFileCompletions)
	fl.BoolVar(&f.schemaOnly, "schema-only", false, "only (re)write schema/, the copy of the schema")
	return cmd
}

func runInit(cmd *cobra.Command, dir string, f initFlags) error {
	out := cmd.OutOrStdout()
	if f.schemaOnly {
		n, err := writeSchemaCopy(dir, true)
		if err != nil {
			return couldNotRun(err)
		}
		_, err = fmt.Fprintf(out, "wrote %d schema files (schema %s) in %s\n", n, desired.SchemaVersion(), filepath.Join(dir, "schema"))
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return couldNotRun(fmt.Errorf("init %s: %w", dir, err))
	}
	if f.site == "" {
		f.site = strings.ToLower(filepath.Base(abs))
	}
	if err := checkNames(f); err != nil {
		return couldNotRun(err)
	}
	data := scaffoldData{
		Site: f.site, Package: cuePackage(f.site), Role: f.role, Node: f.node,
		RoleLabel: cueLabel(f.role), NodeLabel: cueLabel(f.node),
		SchemaVersion: desired.SchemaVersion(), Module: schema.ModulePath, LanguageVersion: schema.LanguageVersion,
		InstallVersion: installVersion(),
	}
	files := []struct{ tmpl, path string }{
		{"module.cue.tmpl", "cue.mod/module.cue"},
		{"site.cue.tmpl", filepath.Join("sites", f.site, "site.cue")},
		{"gitignore.tmpl", ".gitignore"},
		{"ci.yml.tmpl", ".github/workflows/fsgit.yml"},
		{"README.md.tmpl", "README.md"},
	}
	// Nothing is written when anything is in the way.
	for _, fl := range files {
		if _, err := os.Lstat(filepath.Join(dir, fl.path)); err == nil {
			return couldNotRun(fmt.Errorf("init: %s already exists: init writes a new repository and overwrites nothing", filepath.Join(dir, fl.path)))
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "schema")); err == nil {
		return couldNotRun(fmt.Errorf("init: %s already exists (to refresh the schema copy: fsgit init --schema-only %s)", filepath.Join(dir, "schema"), dir))
	}
	for _, fl := range files {
		b, err := execTemplate(fl.tmpl, data)
		if err != nil {
			return couldNotRun(err)
		}
		if err := writeNew(filepath.Join(dir, fl.path), b); err != nil {
			return couldNotRun(err)
		}
	}
	if _, err := writeSchemaCopy(dir, false); err != nil {
		return couldNotRun(err)
	}
	siteDir := filepath.Join(dir, "sites", f.site)
	site, err := desired.LoadDir(cmd.Context(), siteDir)
	if err != nil {
		return invalid(cmd, err)
	}
	if probs, _ := site.VetCatalogs(cmd.Context()); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(cmd.ErrOrStderr(), p)
		}
		return couldNotRun(fmt.Errorf("init: the site written in %s does not vet", siteDir))
	}
	_, err = fmt.Fprintf(out, `made site %s in %s: node %s in role %s (vets)
next:
  cd %s && git init && git add -A && git commit -m "site %s"
  fsgit vet && fsgit render --node %s -o text
then run an agent on the node: docs/operating.md
`, f.site, dir, f.node, f.role, dir, f.site, f.node)
	return err
}

func execTemplate(name string, data scaffoldData) ([]byte, error) {
	t, err := template.New(name).Delims("[[", "]]").Option("missingkey=error").ParseFS(scaffoldFS, "scaffold/"+name)
	if err != nil {
		return nil, fmt.Errorf("init: template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("init: template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// writeSchemaCopy writes the schema's .cue files (not the profiles: a
// repository's profiles would replace fsgit's built-in ones) to
// DIR/schema, each marked as generated. It overwrites only when told to.
func writeSchemaCopy(dir string, overwrite bool) (int, error) {
	names := schema.SchemaFiles()
	for _, name := range names {
		src, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			return 0, fmt.Errorf("init: read the built-in schema: %w", err)
		}
		head := fmt.Sprintf("// Code generated by fsgit init from fsgit's schema %s. DO NOT EDIT.\n// fsgit loads sites with its built-in copy; this one is for editors and\n// the cue command. Refresh it with fsgit init --schema-only.\n\n", desired.SchemaVersion())
		b := append([]byte(head), src...)
		p := filepath.Join(dir, "schema", name)
		if overwrite {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return 0, fmt.Errorf("init: %w", err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return 0, fmt.Errorf("init: %w", err)
			}
			continue
		}
		if err := writeNew(p, b); err != nil {
			return 0, err
		}
	}
	return len(names), nil
}

// writeNew writes a file that must not exist, making its directory.
func writeNew(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init: %s already exists: init overwrites nothing", path)
		}
		return fmt.Errorf("init: %w", err)
	}
	if _, err := io.Copy(fh, bytes.NewReader(b)); err != nil {
		fh.Close()
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	return nil
}

// cuePackage makes a CUE package name of a site name ("prod-eu" →
// "prod_eu"; one starting with a digit gets "site_" in front).
func cuePackage(site string) string {
	p := strings.ReplaceAll(site, "-", "_")
	if p[0] >= '0' && p[0] <= '9' {
		p = "site_" + p
	}
	return p
}

// cueLabel writes a name as a CUE label: bare when it is an identifier,
// quoted otherwise ("web-1").
func cueLabel(name string) string {
	if regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`).MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

// installVersion is the version go install should fetch in the CI
// example: this binary's, else latest.
func installVersion() string {
	if v := buildVersion().Version; strings.HasPrefix(v, "v") {
		return v
	}
	return "latest"
}
