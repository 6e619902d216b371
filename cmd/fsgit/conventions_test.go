//go:build !lean

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/schema"
)

// eachCommand calls f on every command of fsgit but the root and cobra's
// own (help, completion).
func eachCommand(t *testing.T, f func(t *testing.T, c *cobra.Command)) {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) { f(t, c) })
	}
}

// TestConventions: every command has an Example, refuses stray
// arguments with a sentence, takes the same -o names with completion,
// and --node names a node (never a bool) everywhere.
func TestConventions(t *testing.T) {
	eachCommand(t, func(t *testing.T, c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			t.Error("no Example in its help")
		}
		if c.Args == nil && c.ValidArgsFunction == nil {
			t.Error("positional arguments are neither checked nor completed")
		}
		if o := c.Flags().Lookup("output"); o != nil {
			if o.Shorthand != "o" {
				t.Errorf("--output has shorthand %q, want o", o.Shorthand)
			}
			for _, want := range []string{"text", "json", "yaml"} {
				if err := o.Value.Set(want); err != nil {
					t.Errorf("-o %s refused: %v", want, err)
				}
			}
			err := o.Value.Set("xml")
			if err == nil || !strings.Contains(err.Error(), "want text") {
				t.Errorf("-o xml: %v, want a sentence naming the formats", err)
			}
			if _, ok := c.GetFlagCompletionFunc("output"); !ok {
				t.Error("-o does not complete")
			}
		}
		if n := c.Flags().Lookup("node"); n != nil {
			if n.Value.Type() == "bool" {
				t.Error("--node is a bool here; everywhere else it names a node")
			}
			if _, ok := c.GetFlagCompletionFunc("node"); !ok {
				t.Error("--node does not complete")
			}
		}
		if c.Args != nil && c.Name() != "hold" && c.Name() != "release" {
			err := c.Args(c, []string{"x", "y", "z"})
			if err == nil || !strings.Contains(err.Error(), "but was given") {
				t.Errorf("three stray arguments: %v, want a sentence saying so", err)
			}
		}
	})
}

// TestInit_cueLoader: the scaffold's schema import resolves with CUE's
// own loader (what the cue command and editors use), not only with fsgit's.
func TestInit_cueLoader(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "infra")
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"init", dir, "--site", "prod"})
	if err := root.Execute(); err != nil {
		t.Fatalf("init: %v\n%s", err, out.String())
	}
	insts := load.Instances([]string{"./sites/prod"}, &load.Config{Dir: dir})
	if len(insts) != 1 || insts[0].Err != nil {
		t.Fatalf("cue load: %v", insts[0].Err)
	}
	v := cuecontext.New().BuildInstance(insts[0])
	if err := v.Validate(); err != nil {
		t.Fatalf("cue vet: %v", err)
	}
	if name, _ := v.LookupPath(cue.ParsePath("nodes.\"node-1\".role")).String(); name != "base" {
		t.Errorf("node-1's role: %q", name)
	}
}

// TestSampleAgentConfig: docs/agent.cue, the sample operators copy, is a
// valid configuration for the schema.
func TestSampleAgentConfig(t *testing.T) {
	cfg, err := agent.LoadConfig(schema.Files(), "../../docs/agent.cue")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != "online-1" || cfg.Source.Site != "sites/prod" || len(cfg.Source.TrustedKeys) != 1 {
		t.Errorf("sample read as %+v", cfg)
	}
}
