//go:build !lean

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/reconciler"
)

func newRenderCmd() *cobra.Command {
	var siteDir, node, output string
	var lim desired.Limits
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print a node's resolved catalog",
		Long: `Render evaluates the site for one node and prints its catalog: every
resource sorted by ID, with its edges and its resolved fields. Secrets appear
only as references ({"secret": "name"}); their values are never read.`,
		Example: `  # online-1's catalog as JSON, from the site found from the current directory
  fsgit render --node online-1
  # as text, from a given site
  fsgit render --site sites/prod --node online-1 -o text`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if node == "" {
				return &exitError{code: 1, err: errors.New("render: --node is required")}
			}
			siteDir, err := resolveSite(siteDir)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			// One node's evaluation, as apply's first run: its
			// heap was prepared as apply's (internal/startheap).
			site, err := desired.LoadDirNode(cmd.Context(), siteDir, node, lim)
			if err != nil {
				return invalid(cmd, err)
			}
			cat, err := site.Catalog(node)
			if err != nil {
				return invalid(cmd, err)
			}
			var buf bytes.Buffer
			switch output {
			case outJSON, outYAML:
				// YAML lists the fields in JSON's order.
				err = writeDoc(&buf, output, cat)
			default:
				err = renderText(&buf, cat)
			}
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("render %s: %w", node, err)}
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
	siteFlag(cmd, &siteDir, "the site's directory")
	nodeFlag(cmd, &node, "the node to render (required)")
	addOutputFlag(cmd, &output, outJSON)
	addLimitFlags(cmd, &lim)
	return cmd
}

// invalid prints the problems of an invalid site or catalog, one per line,
// and returns exit status 1.
func invalid(cmd *cobra.Command, err error) error {
	var inv *desired.InvalidError
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			fmt.Fprintln(cmd.ErrOrStderr(), p)
		}
		return &exitError{code: 1}
	}
	return &exitError{code: 1, err: err}
}

// renderText prints one block per resource: its ID, its edges, then its
// fields sorted by name; multi-line strings (file contents) as indented
// blocks, other values as compact JSON.
func renderText(w io.Writer, cat *reconciler.Catalog) error {
	fmt.Fprintf(w, "# site %s, node %s, role %s, revision %s, %d resources\n", cat.Site, cat.Node, cat.Role, cat.Revision, len(cat.Resources))
	for _, r := range cat.Resources {
		fmt.Fprintf(w, "\n%s\n", r.ID)
		if len(r.Require) > 0 {
			fmt.Fprintf(w, "  require: %s\n", joinIDs(r.Require))
		}
		if len(r.Notify) > 0 {
			fmt.Fprintf(w, "  notify: %s\n", joinIDs(r.Notify))
		}
		if r.Mode != "" && r.Mode != reconciler.ModeEnforce {
			fmt.Fprintf(w, "  drift: %s\n", r.Mode)
		}
		if r.AllowDestroy {
			fmt.Fprintln(w, "  allowDestroy: true")
		}
		var spec map[string]json.RawMessage
		if err := json.Unmarshal(r.Spec, &spec); err != nil {
			return fmt.Errorf("decode spec of %s: %w", r.ID, err)
		}
		keys := make([]string, 0, len(spec))
		for k := range spec {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var s string
			if json.Unmarshal(spec[k], &s) == nil && strings.Contains(s, "\n") {
				fmt.Fprintf(w, "  %s: |\n", k)
				for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
					fmt.Fprintf(w, "    %s\n", line)
				}
				continue
			}
			fmt.Fprintf(w, "  %s: %s\n", k, spec[k])
		}
	}
	return nil
}

func joinIDs(ids []reconciler.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}
