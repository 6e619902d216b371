package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/fsgit/fsgit/reconciler"
)

// Event kinds the agent notifies.
const (
	EventNotConverged   = "not-converged"
	EventConverged      = "converged"
	EventRefused        = "refused"
	EventPendingDestroy = "pending-destroy"
	EventHoldEnded      = "hold-ended"
	// EventSourceFrozen: the source's tip is older than maxTipAge (and,
	// resolved, no longer).
	EventSourceFrozen = "source-frozen"
)

// Event is what the agent posts to its notification endpoints when the
// node's state changes. It holds names, revisions and counts, never a
// secret.
type Event struct {
	Kind string `json:"kind"`
	// Severity is "critical", "warning" or "info".
	Severity string `json:"severity"`
	Node     string `json:"node"`
	Site     string `json:"site,omitempty"`
	Role     string `json:"role,omitempty"`
	Revision string `json:"revision,omitempty"`
	Summary  string `json:"summary"`
	// Resources names the resources concerned, when there are some.
	Resources []reconciler.ID `json:"resources,omitempty"`
	At        time.Time       `json:"at,omitzero"`
	// Resolved is set on the event that ends a condition (converged
	// again).
	Resolved bool `json:"resolved,omitempty"`
}

// notifyQueue bounds the events waiting for one endpoint: beyond, new
// ones are dropped (and counted), never waited for.
const notifyQueue = 64

// notifier posts events to the configured endpoints, each from its own
// queue and goroutine: a run never waits on it.
type notifier struct {
	log       *slog.Logger
	m         *metrics
	endpoints []*endpoint
	wg        sync.WaitGroup
	// backoff is the first retry's wait (then doubled, up to maxBackoff).
	backoff, maxBackoff time.Duration
}

type endpoint struct {
	cfg      NotifyEndpoint
	name     string // for logs: the scheme and host, never the path
	queue    chan Event
	attempts int
	every    time.Duration
	last     map[string]time.Time // by kind
	client   *http.Client
}

func newNotifier(cfg NotifyConfig, log *slog.Logger, m *metrics) *notifier {
	n := &notifier{log: log, m: m, backoff: time.Second, maxBackoff: 30 * time.Second}
	for i, e := range cfg.Endpoints {
		name := fmt.Sprintf("endpoint %d (%s)", i, e.Format)
		if u, err := url.Parse(e.URL); err == nil && e.URL != "" {
			name = fmt.Sprintf("endpoint %d (%s %s://%s)", i, e.Format, u.Scheme, u.Host)
		}
		n.endpoints = append(n.endpoints, &endpoint{
			cfg: e, name: name, queue: make(chan Event, notifyQueue), attempts: max(cfg.MaxAttempts, 1),
			every: cfg.MinInterval.D(), last: map[string]time.Time{}, client: &http.Client{Timeout: 10 * time.Second},
		})
	}
	return n
}

// start runs the endpoints' senders until ctx ends.
func (n *notifier) start(ctx context.Context) {
	for _, e := range n.endpoints {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.loop(ctx, e) }()
	}
}

// wait waits for the senders to end (after ctx).
func (n *notifier) wait() { n.wg.Wait() }

// send queues ev for every endpoint, without waiting.
func (n *notifier) send(ev Event) {
	if n == nil {
		return
	}
	for _, e := range n.endpoints {
		select {
		case e.queue <- ev:
		default:
			n.m.notifications.WithLabelValues("dropped").Inc()
			n.log.Warn("notification dropped: the endpoint's queue is full", "endpoint", e.name, "kind", ev.Kind)
		}
	}
}

func (n *notifier) loop(ctx context.Context, e *endpoint) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.queue:
			if last, ok := e.last[ev.Kind]; ok && !ev.Resolved && ev.At.Sub(last) < e.every {
				n.m.notifications.WithLabelValues("limited").Inc()
				continue
			}
			e.last[ev.Kind] = ev.At
			n.deliver(ctx, e, ev)
		}
	}
}

// deliver posts ev, retrying with backoff.
func (n *notifier) deliver(ctx context.Context, e *endpoint, ev Event) {
	bo := &backoff.ExponentialBackOff{InitialInterval: n.backoff, Multiplier: 2, MaxInterval: n.maxBackoff}
	var err error
	for attempt := 1; attempt <= e.attempts; attempt++ {
		if err = n.post(ctx, e, ev); err == nil {
			n.m.notifications.WithLabelValues("sent").Inc()
			return
		}
		if attempt == e.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.NextBackOff()):
		}
	}
	n.m.notifications.WithLabelValues("failed").Inc()
	n.log.Warn("notification not delivered", "endpoint", e.name, "kind", ev.Kind, "attempts", e.attempts, "err", err)
}

func (n *notifier) post(ctx context.Context, e *endpoint, ev Event) error {
	target := e.cfg.URL
	if e.cfg.URLFile != "" {
		b, err := os.ReadFile(e.cfg.URLFile)
		if err != nil {
			return fmt.Errorf("read the endpoint's URL file: %w", err)
		}
		target = strings.TrimSpace(string(b))
	}
	body, err := payload(e.cfg.Format, ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL, which may hold a token.
		return fmt.Errorf("bad endpoint URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which may hold a token: its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("post: %w", ue.Err)
		}
		return fmt.Errorf("post: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// alertmanagerAlert is one alert of Alertmanager's POST /api/v2/alerts.
type alertmanagerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt,omitzero"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
}

// slackMessage is a Slack incoming webhook's message.
type slackMessage struct {
	Text string `json:"text"`
}

// alertName is the Alertmanager alert an event kind raises or resolves.
func alertName(kind string) string {
	switch kind {
	case EventNotConverged, EventConverged:
		return "FsgitNotConverged"
	case EventRefused:
		return "FsgitCommitRefused"
	case EventPendingDestroy:
		return "FsgitPendingDestroy"
	case EventSourceFrozen:
		return "FsgitSourceFrozen"
	}
	return "FsgitHoldEnded"
}

// payload renders ev in an endpoint's format.
func payload(format string, ev Event) ([]byte, error) {
	switch format {
	case "alertmanager":
		a := alertmanagerAlert{
			Labels:      map[string]string{"alertname": alertName(ev.Kind), "node": ev.Node, "severity": ev.Severity, "source": "fsgit"},
			Annotations: map[string]string{"summary": ev.Summary},
			StartsAt:    ev.At.UTC(),
		}
		if ev.Site != "" {
			a.Labels["site"] = ev.Site
		}
		if ev.Revision != "" {
			a.Annotations["revision"] = ev.Revision
		}
		if ev.Resolved {
			a.EndsAt = ev.At.UTC()
		}
		return json.Marshal([]alertmanagerAlert{a})
	case "slack":
		icon := ":warning:"
		switch {
		case ev.Resolved:
			icon = ":white_check_mark:"
		case ev.Severity == "critical":
			icon = ":rotating_light:"
		case ev.Severity == "info":
			icon = ":information_source:"
		}
		name := ev.Node
		if ev.Site != "" {
			name = ev.Site + "/" + ev.Node
		}
		return json.Marshal(slackMessage{Text: fmt.Sprintf("%s fsgit %s: %s", icon, name, ev.Summary)})
	}
	return json.Marshal(ev)
}

// event fills in the node's names and the time.
func (a *Agent) event(kind, severity, summary string, ids []reconciler.ID) Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Event{Kind: kind, Severity: severity, Node: a.node.Node, Site: a.node.Site, Role: a.node.Role,
		Revision: a.node.DesiredRevision, Summary: summary, Resources: ids, At: time.Now().UTC()}
}

// notifyFrozen posts the source's starting, or ceasing, to look frozen.
func (a *Agent) notifyFrozen(froze, thawed bool) {
	if a.notifier == nil || !froze && !thawed {
		return
	}
	a.mu.Lock()
	reason := a.node.Source.Frozen
	tip, age := a.node.Source.Tip, a.node.Source.TipAge.D()
	a.mu.Unlock()
	if froze {
		a.notifier.send(a.event(EventSourceFrozen, "warning", reason, nil))
		return
	}
	e := a.event(EventSourceFrozen, "warning", fmt.Sprintf("source no longer looks frozen: tip %s is %s old", short(tip), age), nil)
	e.Resolved = true
	a.notifier.send(e)
}
