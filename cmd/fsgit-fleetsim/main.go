// Command fsgit-fleetsim simulates an fsgit fleet on loopback and prints
// its figures as Markdown tables: for each fleet size and status layout,
// N real agents against git http-backend behind a counter (idle load,
// times to converge and to land status after a commit changing every node,
// pushes, bytes, the time to read the fleet); and, with -pollers, the idle
// load per read-only mirror for that many lightweight pollers.
//
//	fsgit-fleetsim -nodes 100,300 -layouts branch,refs
//	fsgit-fleetsim -nodes 0 -pollers 10000 -mirrors 4
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/fsgit/fsgit/internal/fleetsim"
	"github.com/fsgit/fsgit/internal/status"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fsgit-fleetsim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fsgit-fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.String("nodes", "100,300,1000", "fleet sizes, comma-separated (0: none)")
	layouts := fs.String("layouts", "branch,refs", "status layouts to simulate, comma-separated")
	interval := fs.Duration("interval", 10*time.Second, "the agents' poll interval")
	jitter := fs.Duration("jitter", 5*time.Second, "the agents' poll jitter")
	idle := fs.Duration("idle", 30*time.Second, "how long the idle load is measured")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on each wait for convergence or status")
	pollers := fs.Int("pollers", 0, "lightweight idle pollers for the mirror topology (0: none)")
	mirrors := fs.Int("mirrors", 4, "read-only mirrors the pollers share")
	pInterval := fs.Duration("poller-interval", 60*time.Second, "the pollers' interval")
	pJitter := fs.Duration("poller-jitter", 20*time.Second, "the pollers' jitter")
	window := fs.Duration("window", 60*time.Second, "how long the mirrors' load is measured")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))

	var sizes []int
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return fmt.Errorf("-nodes: bad size %q", s)
		}
		if n > 0 {
			sizes = append(sizes, n)
		}
	}
	if len(sizes) > 0 {
		fmt.Fprintf(stdout, "| nodes | status layout | idle req/s (formula) | idle bytes/req | 50 %% | 90 %% | 99 %% | 100 %% converged | status landed | pushes/node | site req/node | status req/node | git CPU | agents' CPU | server MB | status --fleet |\n")
		fmt.Fprintf(stdout, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	}
	for _, n := range sizes {
		for _, layout := range strings.Split(*layouts, ",") {
			log.Info("simulating", "nodes", n, "layout", layout, "interval", *interval, "jitter", *jitter)
			start := time.Now()
			r, err := fleetsim.RunFleet(ctx, fleetsim.Fleet{Nodes: n, Interval: *interval, Jitter: *jitter, Idle: *idle,
				Layout: layout, Timeout: *timeout, Log: log})
			if r == nil {
				return fmt.Errorf("%d nodes, %s layout: %w", n, layout, err)
			}
			note := r.Note
			if err != nil {
				note = strings.TrimSpace(note + " " + err.Error())
			}
			landed := fmt.Sprintf("%.1f s", r.Landed.Seconds())
			if r.Landed == 0 {
				landed = "not all"
			}
			// A share of the fleet that did not converge within the
			// timeout has no time: "–", not 0.
			var conv [4]string
			for i, d := range r.Converged {
				conv[i] = "–"
				if d > 0 {
					conv[i] = fmt.Sprintf("%.1f s", d.Seconds())
				}
			}
			statusReqs := "in site"
			if layout == status.LayoutRefs {
				statusReqs = fmt.Sprintf("%.2f", r.StatusRequestsPerNode)
			}
			fmt.Fprintf(stdout, "| %d | %s | %.2f (%.2f) | %.0f | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %.1f s | %.1f s | %.1f | %.2f s |\n",
				r.Nodes, layout, r.IdleRequestsPerSecond, r.FormulaRequestsPerSecond, r.IdleBytesPerRequest,
				conv[0], conv[1], conv[2], conv[3],
				landed, r.PushesPerNode, r.SiteRequestsPerNode, statusReqs, r.GitCPU.Seconds(), r.AgentCPU.Seconds(), float64(r.ServerBytes)/1e6, r.FleetRead.Seconds())
			if note != "" {
				fmt.Fprintf(stdout, "\n> %d nodes, %s: %s\n\n", n, layout, note)
			}
			log.Info("simulated", "nodes", n, "layout", layout, "took", time.Since(start).Round(time.Second))
		}
	}
	if *pollers > 0 {
		log.Info("simulating mirrors", "pollers", *pollers, "mirrors", *mirrors)
		loads, err := fleetsim.RunMirrors(ctx, fleetsim.Mirrors{Pollers: *pollers, Mirrors: *mirrors, Interval: *pInterval,
			Jitter: *pJitter, Window: *window})
		if err != nil {
			return err
		}
		formula := float64(*pollers) / float64(*mirrors) / (*pInterval + *pJitter/2).Seconds()
		fmt.Fprintf(stdout, "\n%d idle pollers over %d mirrors, interval %v, jitter %v, measured over %v (formula: %.2f req/s per mirror)\n\n",
			*pollers, *mirrors, *pInterval, *pJitter, *window, formula)
		fmt.Fprintf(stdout, "| mirror | req/s | bytes/req | poll p99 | failed polls |\n|---|---|---|---|---|\n")
		for i, l := range loads {
			fmt.Fprintf(stdout, "| %d | %.2f | %.0f | %.3f s | %d |\n", i, l.RequestsPerSecond, l.BytesPerRequest, l.P99.Seconds(), l.Errors)
		}
	}
	return nil
}
