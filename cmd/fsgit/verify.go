//go:build !lean

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/internal/verify"
	"github.com/fsgit/fsgit/reconciler"
)

// verifyFlags are the flags of fsgit verify.
type verifyFlags struct {
	site        string
	nodes       []string
	root        string
	secretsDir  string
	ageIdentity string
	names       verify.Names
	feature     verify.Feature
	query       string
	limit       int
	timeout     time.Duration
	limits      desired.Limits
}

func newVerifyCmd() *cobra.Command {
	f := verifyFlags{feature: verify.SeedFeature()}
	cmd := &cobra.Command{
		Use:   "verify --site DIR",
		Short: "Prove the converged feature store works, with real writes to each store",
		Long: `verify runs the seed's verification script for real against the stack fsgit converged:

  1. online        upsert the feature's latest value into latest_features as the
                   application user (fs_user) and read it back;
  2. offline       append the feature's history row (entity, feature, value, time) to
                   the Iceberg table feature_logs.historical_features through the JDBC
                   catalog in MariaDB: a real data file and snapshot, read back;
  3. vector-write  store the feature's description in Weaviate's FeatureMetadata class,
                   vectorized by the class's module, and read its vector back;
  4. vector-search run a near-text similarity search and show the nearest features.

Where each store is comes from the site's catalogs (the online node's mariadb
resources, the offline node's iceberg.table, the vector node's weaviate.class);
credentials come from the node's secret provider (--secrets-dir, --age-identity),
never from the command line. Each step prints its result and time.

Exit codes: 0 every step passed, 4 a step failed (the message names it), 1 verify
could not start (invalid site, a store not found in the catalogs).`,
		Example: `  # as root on a node that can reach every store
  fsgit verify --site sites/prod
  # the stores of two nodes only
  fsgit verify --node online-1,offline-1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	siteFlag(cmd, &f.site, "the site's directory (sites/<name> of the repository)")
	nodesFlag(cmd, &f.nodes, "look for the stores in these nodes' catalogs only (default: every node)")
	fl.StringVar(&f.root, "root", "", "the --root the site was applied under (maps a file:// warehouse)")
	fl.StringVar(&f.secretsDir, "secrets-dir", secrets.DefaultDir, "directory of secret files (root only)")
	fl.StringVar(&f.ageIdentity, "age-identity", "", "the node's age identity, to decrypt <site>/secrets/<name>.age")
	fl.StringVar(&f.names.OnlineTable, "online-table", "latest_features", "the online store's table")
	fl.StringVar(&f.names.OfflineTable, "offline-table", "feature_logs.historical_features", "the offline store's Iceberg table, namespace.name")
	fl.StringVar(&f.names.Class, "class", "FeatureMetadata", "the vector store's Weaviate class")
	fl.StringVar(&f.feature.Entity, "entity", f.feature.Entity, "the entity of the feature value written")
	fl.StringVar(&f.feature.Name, "feature", f.feature.Name, "the feature's name")
	fl.Float64Var(&f.feature.Value, "value", f.feature.Value, "the feature's value")
	fl.StringVar(&f.feature.Description, "description", f.feature.Description, "the feature's description, vectorized")
	fl.StringVar(&f.query, "query", "user spending habits", "the similarity search's concept")
	fl.IntVar(&f.limit, "limit", 2, "how many nearest features to show")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "time limit for one step")
	addLimitFlags(cmd, &f.limits)
	return cmd
}

func runVerify(ctx context.Context, stdout, stderr io.Writer, f verifyFlags) error {
	dir, err := resolveSite(f.site)
	if err != nil {
		return couldNotRun(err)
	}
	f.site = dir
	if ctx == nil {
		ctx = context.Background()
	}
	site, err := desired.LoadDirLimits(ctx, dir, f.limits)
	if err != nil {
		return couldNotRun(fmt.Errorf("load site %s:\n%w", f.site, err))
	}
	nodes := f.nodes
	if len(nodes) == 0 {
		nodes = site.Nodes()
	}
	cats := make([]*reconciler.Catalog, 0, len(nodes))
	for _, n := range nodes {
		cat, err := site.Catalog(n)
		if err != nil {
			return couldNotRun(fmt.Errorf("build the catalog of node %s:\n%w", n, err))
		}
		cats = append(cats, cat)
	}
	cfg, err := verify.FromCatalogs(cats, f.names)
	if err != nil {
		return couldNotRun(fmt.Errorf("find the stores in site %s:\n%w", f.site, err))
	}
	root, err := pass.SandboxRoot(f.root, true)
	if err != nil {
		return couldNotRun(err)
	}
	resolver, err := pass.SiteSecrets(f.site, f.secretsDir, f.ageIdentity)
	if err != nil {
		return couldNotRun(err)
	}
	start := time.Now()
	res, err := verify.Run(ctx, cfg, verify.Options{
		Feature:     f.feature,
		Query:       f.query,
		Limit:       f.limit,
		Root:        root,
		Secrets:     resolver,
		Out:         stdout,
		Log:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		StepTimeout: f.timeout,
	})
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(stdout, "verify: %d of %d steps passed in %s\n", len(res)-failed, len(res), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return &exitError{code: 4, err: err}
	}
	return nil
}
