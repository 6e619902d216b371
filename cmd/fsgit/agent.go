//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/agent"
	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/schema"
)

func newAgentCmd() *cobra.Command {
	var configFile, checkConfig string
	cmd := &cobra.Command{
		Use:   "agent [--config FILE] | --check-config FILE",
		Short: "Run the daemon: follow the git branch, converge, correct drift, report",
		Long: `agent is the daemon that runs on every node. It polls the configured branch
(a ref listing; a fetch only when the branch moved), verifies each new commit's
signature against the trusted keys, builds this node's catalog from the site and
applies it. Between commits it re-observes the node on every poll and corrects drift
on managed files as soon as they change. It publishes the node's status to the
status branch when the outcome changes, and answers fsgit status on a local socket.

The configuration is a CUE file validated by the schema's #AgentConfig
(schema/agent.cue documents every field and default).

Signals: SIGTERM or SIGINT finishes the resources in hand and stops (a second one
cancels them); SIGHUP reloads the configuration file.

With --check-config FILE it validates a configuration (the schema, the files it
names) and exits without starting: 0 valid, 1 not.`,
		Example: `  # what fsgit.service runs
  fsgit agent --config /etc/fsgit/agent.cue
  # check a configuration before installing it
  fsgit agent --check-config ./agent.cue`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if checkConfig != "" {
				return runCheckConfig(cmd.OutOrStdout(), checkConfig)
			}
			return runAgent(cmd.Context(), cmd.ErrOrStderr(), configFile)
		},
	}
	cmd.Flags().StringVar(&checkConfig, "check-config", "", "validate this configuration file and exit, without starting")
	cmd.Flags().StringVarP(&configFile, "config", "c", agent.DefaultConfigFile, "the agent's configuration file (CUE)")
	return cmd
}

func runAgent(ctx context.Context, stderr io.Writer, configFile string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := agent.LoadConfig(schema.Files(), configFile)
	if err != nil {
		return couldNotRun(err)
	}
	level := new(slog.LevelVar)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	reg := newRegistry()
	defer reg.Close() // its kinds' clients: Docker Engine API, MariaDB pools
	a, err := agent.New(agent.Options{
		Config:     cfg,
		ConfigFile: configFile,
		SchemaFS:   schema.Files(),
		Registry:   reg,
		Secrets:    agent.NodeSecrets,
		Log:        log,
		LogLevel:   level,
	})
	if err != nil {
		return couldNotRun(err)
	}

	// SIGTERM or SIGINT finishes the resources in hand, a second one
	// cancels them; SIGHUP reloads the configuration.
	ctx, _, release := pass.Interrupted(ctx, func(s os.Signal) {
		log.Info("signal: finishing the resources in hand (signal again to cancel them)", "signal", s.String())
		a.Stop()
	})
	defer release()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.Reload()
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		// Exit 1; after a restart request, for the service manager to
		// start the agent again.
		return couldNotRun(err)
	}
	return nil
}

// runCheckConfig validates an agent configuration without starting the
// agent: the schema, the trusted keys, the files it names. Exit 0 valid,
// 1 not, with one line per problem.
func runCheckConfig(w io.Writer, file string) error {
	cfg, errs := agent.CheckConfig(schema.Files(), file)
	if len(errs) > 0 {
		// One line per problem: a schema error holds one per field, under
		// a heading that would say the file's name twice.
		var lines []string
		for _, e := range errs {
			var ce *desired.ConfigError
			if !errors.As(e, &ce) {
				lines = append(lines, e.Error())
				continue
			}
			for _, p := range ce.Problems {
				lines = append(lines, p.String())
			}
		}
		return couldNotRun(fmt.Errorf("agent configuration %s is not valid (%d %s):\n%s", file, len(lines), plural(len(lines), "problem", "problems"), strings.Join(lines, "\n")))
	}
	signed := "commits are not verified (source.trustedKeys is empty)"
	if n := len(cfg.Source.TrustedKeys); n > 0 {
		signed = fmt.Sprintf("commits signed by %d trusted key %s", n, plural(n, "file", "files"))
	}
	if d := cfg.Source.MaxTipAge.D(); d > 0 {
		signed += fmt.Sprintf("; the source is reported frozen when its tip is older than %s", d)
	}
	_, err := fmt.Fprintf(w, "agent configuration %s is valid: node %s follows %s branch %s, site %s; %s\n",
		file, cfg.Node, gitsource.RedactURL(cfg.Source.URL), cfg.Source.Branch, cfg.Source.Site, signed)
	return err
}
