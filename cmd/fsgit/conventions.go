package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// The conventions every command follows: -o takes the same names
// everywhere, --node names a node, a stray argument is refused with a
// sentence, and flags complete on the shell.

// Output formats: every command that prints a document takes text, json
// and yaml; plan takes markdown too.
const (
	outText     = "text"
	outJSON     = "json"
	outYAML     = "yaml"
	outMarkdown = "markdown"
)

// outputFormats is what -o takes in every command but plan.
func outputFormats() []string { return []string{outText, outJSON, outYAML} }

// outputValue is the value of -o: one of the command's formats. "table",
// the name some commands used for text before, is read as text.
type outputValue struct {
	p       *string
	formats []string
}

func (o *outputValue) String() string { return *o.p }

// Set implements pflag.Value.
func (o *outputValue) Set(s string) error {
	if s == "table" {
		s = outText
	}
	if !slices.Contains(o.formats, s) {
		return fmt.Errorf("unknown output format %q: want %s", s, orList(o.formats))
	}
	*o.p = s
	return nil
}

// Type implements pflag.Value.
func (o *outputValue) Type() string { return "format" }

// addOutputFlag adds -o/--output with the given formats (text, json and
// yaml when none are given) and its completion.
func addOutputFlag(cmd *cobra.Command, p *string, def string, formats ...string) {
	if len(formats) == 0 {
		formats = outputFormats()
	}
	*p = def
	cmd.Flags().VarP(&outputValue{p: p, formats: formats}, "output", "o", "output format: "+orList(formats))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// structured reports whether a format is a document (json or yaml).
func structured(format string) bool { return format == outJSON || format == outYAML }

// writeDoc writes v as indented JSON, or as YAML with the same fields in
// the same order.
func writeDoc(w io.Writer, format string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	if format != outYAML {
		_, err := w.Write(buf.Bytes())
		return err
	}
	b, err := toYAML(buf.Bytes())
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// writeOut is writeDoc for a command's result: an error writing it means
// the command could not run.
func writeOut(w io.Writer, format string, v any) error {
	if err := writeDoc(w, format, v); err != nil {
		return couldNotRun(fmt.Errorf("write %s: %w", format, err))
	}
	return nil
}

// noArgs refuses positional arguments with a sentence that says so.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, but was given %s (flags start with --; see fsgit %s --help)",
			cmd.CommandPath(), quoteArgs(args), cmd.Name())
	}
	return nil
}

// exactArgs wants n positional arguments, named what in the sentence.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return fmt.Errorf("%s needs %s (see fsgit %s --help)", cmd.CommandPath(), what, cmd.Name())
		case len(args) > n:
			return fmt.Errorf("%s takes %s, but was given %d arguments: %s", cmd.CommandPath(), what, len(args), quoteArgs(args))
		}
		return nil
	}
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}

// siteFlag adds --site. Its default is the site found from the current
// directory (findSite), never a fixed one.
func siteFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "site", "", usage+" (default: the site found from the current directory)")
	_ = cmd.MarkFlagDirname("site")
}

// resolveSite returns dir, or when it is empty the site found from the
// current directory.
func resolveSite(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the site: %w (pass --site DIR)", err)
	}
	return findSite(cwd)
}

// findSite finds the site for a command run in dir: the directory of
// sites/ that dir is in, else the one site of the repository around dir
// (the nearest directory above with a cue.mod/ or a sites/). A repository
// with several sites needs --site; the error names them.
func findSite(dir string) (string, error) {
	for d := dir; ; {
		if filepath.Base(filepath.Dir(d)) == "sites" && isDir(d) {
			return rel(dir, d), nil
		}
		if isDir(filepath.Join(d, "cue.mod")) || isDir(filepath.Join(d, "sites")) {
			sites := siteDirs(filepath.Join(d, "sites"))
			switch len(sites) {
			case 1:
				return rel(dir, filepath.Join(d, "sites", sites[0])), nil
			case 0:
				return "", fmt.Errorf("no site in %s: pass --site DIR, or make one with fsgit init", filepath.Join(rel(dir, d), "sites"))
			default:
				return "", fmt.Errorf("%d sites in %s (%s): pass --site DIR", len(sites), filepath.Join(rel(dir, d), "sites"), strings.Join(sites, ", "))
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no site found from %s (no sites/ directory or cue.mod/ above it): pass --site DIR, or make one with fsgit init", dir)
		}
		d = parent
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// siteDirs lists the directories of sites/ that hold a .cue file.
func siteDirs(sites string) []string {
	ents, _ := os.ReadDir(sites)
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(sites, e.Name(), "*.cue")); len(m) > 0 {
			out = append(out, e.Name())
		}
	}
	return out
}

// rel is target relative to base when it can be, for messages.
func rel(base, target string) string {
	if r, err := filepath.Rel(base, target); err == nil {
		return r
	}
	return target
}

// nodeFlag adds --node NAME, one node, with completion; nodesFlag adds
// --node NAME... (repeatable, or comma-separated).
func nodeFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "node", "", usage)
	_ = cmd.RegisterFlagCompletionFunc("node", completeNodes)
}

func nodesFlag(cmd *cobra.Command, p *[]string, usage string) {
	cmd.Flags().StringSliceVar(p, "node", nil, usage+" (repeatable, or comma-separated)")
	_ = cmd.RegisterFlagCompletionFunc("node", completeNodes)
}

// checkParallel refuses --parallel below 1.
func checkParallel(n int) error {
	if n < 1 {
		return fmt.Errorf("--parallel %d: it must be at least 1 (how many independent resources are handled at once)", n)
	}
	return nil
}
