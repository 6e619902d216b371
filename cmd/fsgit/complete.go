//go:build !lean

package main

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/state"
	"github.com/fsgit/fsgit/schema"
)

// The shell's completions of node names and resource IDs, which evaluate
// the site or read the state: the front for cached runs (build tag lean)
// hands completion requests to the full fsgit.

// completeNodes completes --node with the node names of the command's
// site (its --site, or the site found from the current directory).
func completeNodes(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	dir := ""
	if f := cmd.Flags().Lookup("site"); f != nil {
		dir = f.Value.String()
	}
	dir, err := resolveSite(dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	site, err := desired.LoadDir(ctx, dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	return withPrefix(site.Nodes(), prefix), cobra.ShellCompDirectiveNoFileComp
}

// completeResources completes resource IDs with the ones this node's
// state holds (the agent's configuration names the state file).
func completeResources(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	path := state.DefaultPath
	if f := cmd.Flags().Lookup("config"); f != nil {
		if cfg, err := agent.LoadConfig(schema.Files(), f.Value.String()); err == nil {
			path = cfg.StateFile
		}
	}
	if f := cmd.Flags().Lookup("state"); f != nil && f.Value.String() != "" {
		path = f.Value.String()
	}
	ids, err := resourceIDs(path)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	return withPrefix(ids, prefix), cobra.ShellCompDirectiveNoFileComp
}

// completeFirstResource completes the one resource ID a command takes.
func completeFirstResource(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeResources(cmd, args, prefix)
}

// resourceIDs lists the resources of the state file, sorted.
func resourceIDs(path string) ([]string, error) {
	st, err := state.Open(path, state.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	mem, err := st.Memory()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(mem.Inventory))
	for id := range mem.Inventory {
		ids = append(ids, string(id))
	}
	sort.Strings(ids)
	return ids, nil
}

func withPrefix(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}
