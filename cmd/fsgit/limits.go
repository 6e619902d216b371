package main

import (
	"github.com/spf13/cobra"

	"github.com/fsgit/fsgit/internal/sitefiles"
)

// addLimitFlags adds the flags that bound what evaluating a site may cost
// (docs/site-authoring.md, "Limits"), to every command that evaluates one.
func addLimitFlags(cmd *cobra.Command, lim *sitefiles.Limits) {
	fl := cmd.Flags()
	fl.Int64Var(&lim.MaxFileBytes, "max-file-bytes", sitefiles.DefaultMaxFileBytes, "refuse a site with a .cue file bigger than this (bytes; -1: no limit)")
	fl.Int64Var(&lim.MaxSiteBytes, "max-site-bytes", sitefiles.DefaultMaxSiteBytes, "refuse a site whose .cue files are bigger than this together (bytes; -1: no limit)")
	fl.IntVar(&lim.MaxDepth, "max-depth", sitefiles.DefaultMaxDepth, "refuse a site with a file nested deeper than this (labels of a chain and brackets; -1: no limit)")
	fl.IntVar(&lim.MaxTerms, "max-terms", sitefiles.DefaultMaxTerms, "refuse a site with an expression of more terms than this (a chain of operators like a | b | c; -1: no limit)")
	fl.DurationVar(&lim.EvalTimeout, "eval-timeout", sitefiles.DefaultEvalTimeout, "time budget for evaluating the site; past it the site is refused (-1s: no limit)")
}
