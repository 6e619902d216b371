package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fsgit/fsgit/internal/status"
)

// publishAttempts is how many pushes one publish tries (with jittered
// backoff: about 4 s in all) before it counts as failed.
const publishAttempts = 6

// publisher publishes the node's status in the background: only a
// document whose fingerprint differs from the last one published, and only
// the newest (a newer document cancels the publish in flight).
type publisher struct {
	log     *slog.Logger
	metrics *metrics
	ready   chan struct{}

	mu       sync.Mutex
	p        *status.Publisher // nil when publishing is off
	pending  *status.Node
	lastFP   string
	cancel   context.CancelFunc
	inFlight bool
	failing  bool
}

func newPublisher(cfg *Config, log *slog.Logger, m *metrics) (*publisher, error) {
	p := &publisher{log: log, metrics: m, ready: make(chan struct{}, 1)}
	if err := p.configure(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// configure (re)makes the status publisher from the configuration.
func (p *publisher) configure(cfg *Config) error {
	var sp *status.Publisher
	if cfg.Status.Enabled {
		url := cfg.StatusURL()
		auth, err := cfg.StatusCredentials().gitCredentials().AuthMethod(url)
		if err != nil {
			return err
		}
		// A few attempts (lost races, a failing server) and the failure is
		// counted and logged; the next run offers the document again.
		sp = &status.Publisher{URL: url, Branch: cfg.Status.Branch, Layout: cfg.Status.Layout, Auth: auth, Email: "fsgit@" + cfg.Node, Log: p.log, MaxAttempts: publishAttempts}
	}
	p.mu.Lock()
	p.p = sp
	p.lastFP = "" // publish again where the configuration now points
	p.mu.Unlock()
	return nil
}

// offer queues n if its outcome differs from the last one published.
func (p *publisher) offer(n *status.Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		return
	}
	fp := n.Fingerprint()
	if fp == p.lastFP {
		return
	}
	p.lastFP = fp
	p.pending = n
	if p.cancel != nil {
		p.cancel()
	}
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

func (p *publisher) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.ready:
		}
		p.mu.Lock()
		n, sp := p.pending, p.p
		p.pending = nil
		if n == nil || sp == nil {
			p.mu.Unlock()
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p.cancel, p.inFlight = cancel, true
		p.mu.Unlock()

		start := time.Now()
		err := sp.Publish(pctx, n)
		cancel()

		p.mu.Lock()
		p.cancel, p.inFlight = nil, false
		superseded := p.pending != nil
		switch {
		case err == nil:
			p.metrics.publishes.WithLabelValues("ok").Inc()
			if p.failing {
				p.log.Info("status published again", "branch", sp.Branch)
			}
			p.failing = false
			p.log.Debug("status published", "converged", n.Converged, "duration", time.Since(start))
		case superseded || ctx.Err() != nil:
			// A newer document replaced this one, or the agent stops.
		default:
			p.metrics.publishes.WithLabelValues("error").Inc()
			if !p.failing {
				p.log.Warn("publish status: will retry after the next run", "err", err)
			}
			p.failing = true
			// Offer the next document even if its outcome is the same.
			p.lastFP = ""
		}
		p.mu.Unlock()
	}
}

// flush waits until nothing is pending or in flight, or until timeout.
func (p *publisher) flush(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		idle := p.pending == nil && !p.inFlight
		p.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
