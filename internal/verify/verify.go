// Package verify proves, with real writes, that a converged feature store
// works end to end. It is the seed's verification script done for real:
//
//  1. online: upsert the latest value of a feature into latest_features,
//     as the application user (fs_user), and read it back;
//  2. offline: append the feature's history row to the Iceberg table
//     feature_logs.historical_features through the JDBC catalog in
//     MariaDB, committing a real data file and snapshot, and read it back;
//  3. vector-write: store the feature's description in Weaviate's
//     FeatureMetadata class, vectorized by the class's vectorizer module,
//     and read the object's vector back;
//  4. vector-search: run a near-text similarity search and show the
//     nearest features.
//
// Where each store is and which secret holds each credential come from the
// site's catalogs ([FromCatalogs]); credential values come from the node's
// secret provider at run time. Each step prints its result and how long it
// took; [Run] returns a [*StepError] per failed step.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// Feature is the feature the steps write.
type Feature struct {
	// Entity and Name identify the feature value (user_123,
	// user_7day_purchase_amount).
	Entity string
	Name   string
	// Value is its latest value.
	Value float64
	// Description is the text that is vectorized.
	Description string
	// Time is the history row's event time; now when zero.
	Time time.Time
}

// SeedFeature returns the seed script's feature.
func SeedFeature() Feature {
	return Feature{
		Entity:      "user_123",
		Name:        "user_7day_purchase_amount",
		Value:       150.75,
		Description: "The total purchase amount of a user in the last 7 days.",
	}
}

// Options are the inputs of a run besides the [Config].
type Options struct {
	// Feature is what is written.
	Feature Feature
	// Query is the similarity search's concept (default "user spending
	// habits") and Limit how many neighbours it asks for (default 2).
	Query string
	Limit int
	// Root maps a file:// warehouse as `apply --root` did.
	Root string
	// Secrets resolves the credentials named by the catalogs.
	Secrets reconciler.SecretResolver
	// Out receives the human-readable report (default io.Discard).
	Out io.Writer
	// Log receives debug logs (default discarded).
	Log *slog.Logger
	// HTTP is the client for Weaviate (default one with a 30s timeout).
	HTTP *http.Client
	// StepTimeout bounds each step (default 2 minutes).
	StepTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Query == "" {
		o.Query = "user spending habits"
	}
	if o.Limit <= 0 {
		o.Limit = 2
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 2 * time.Minute
	}
	if o.Feature.Time.IsZero() {
		o.Feature.Time = time.Now()
	}
	// Iceberg keeps microseconds; so does the read-back comparison.
	o.Feature.Time = o.Feature.Time.UTC().Truncate(time.Microsecond)
}

// StepError is a step that failed.
type StepError struct {
	// Step is the step's name: online, offline, vector-write,
	// vector-search.
	Step string
	Err  error
}

// Error names the step and the cause.
func (e *StepError) Error() string { return fmt.Sprintf("step %s failed: %v", e.Step, e.Err) }

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// Result is the outcome of one step.
type Result struct {
	// Step is the step's name; Title what it does.
	Step  string
	Title string
	// Lines are what it found, for people.
	Lines []string
	// Took is how long it ran.
	Took time.Duration
	// Err is nil when it passed.
	Err error
}

// step is one of the four steps: it returns lines to print.
type step struct {
	name  string
	title string
	run   func(ctx context.Context) ([]string, error)
}

// Run runs the four steps in order, printing each one's result and time to
// opts.Out. Every step runs even when an earlier one failed (they prove
// different stores), except the search, which needs the object the write
// step stores. The error joins one *StepError per failed step.
func Run(ctx context.Context, cfg *Config, opts Options) ([]Result, error) {
	opts.defaults()
	if opts.Secrets == nil {
		return nil, errors.New("verify: no secret provider")
	}
	f := opts.Feature
	v := &vectorClient{cfg: cfg.Vector, http: opts.HTTP, secrets: opts.Secrets}
	var stored string
	steps := []step{
		{"online", fmt.Sprintf("upsert %s/%s into %s.%s as %s (node %s)", f.Entity, f.Name, cfg.Online.Database, cfg.Online.Table, cfg.Online.User, cfg.Online.Node),
			func(ctx context.Context) ([]string, error) { return runOnline(ctx, cfg.Online, opts) }},
		{"offline", fmt.Sprintf("append the history row to iceberg table %s.%s through JDBC catalog %s (node %s)", cfg.Offline.Table.Catalog.Name, cfg.Offline.Table.FullName(), cfg.Offline.Table.Catalog.DB.Database, cfg.Offline.Node),
			func(ctx context.Context) ([]string, error) { return runOffline(ctx, cfg.Offline, opts) }},
		{"vector-write", fmt.Sprintf("store the description in weaviate class %s at %s (node %s)", cfg.Vector.Class, cfg.Vector.URL, cfg.Vector.Node),
			func(ctx context.Context) ([]string, error) {
				id, lines, err := v.write(ctx, f)
				stored = id
				return lines, err
			}},
		{"vector-search", fmt.Sprintf("near-text search %q in %s, limit %d", opts.Query, cfg.Vector.Class, opts.Limit),
			func(ctx context.Context) ([]string, error) {
				if stored == "" {
					return nil, errors.New("skipped: the vector-write step stored nothing")
				}
				return v.search(ctx, opts.Query, opts.Limit, stored)
			}},
	}
	var results []Result
	var errs []error
	for i, s := range steps {
		fmt.Fprintf(opts.Out, "[%d/%d] %s: %s\n", i+1, len(steps), s.name, s.title)
		sctx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
		start := time.Now()
		lines, err := s.run(sctx)
		took := time.Since(start)
		cancel()
		for _, l := range lines {
			fmt.Fprintf(opts.Out, "      %s\n", l)
		}
		res := Result{Step: s.name, Title: s.title, Lines: lines, Took: took}
		if err != nil {
			res.Err = &StepError{Step: s.name, Err: err}
			errs = append(errs, res.Err)
			fmt.Fprintf(opts.Out, "      FAILED in %s: %s\n", round(took), oneLine(err))
		} else {
			fmt.Fprintf(opts.Out, "      ok in %s\n", round(took))
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
