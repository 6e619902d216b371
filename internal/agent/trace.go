package agent

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/fsgit/fsgit/reconciler"
)

// tracer exports every run as an OpenTelemetry trace over OTLP/HTTP: one
// span for the run (from the report's start to its end, with the trigger,
// the revision and the count of each outcome), and one span event per
// resource that did something (created, changed, deleted, drifted,
// failed, skipped, held, refreshed), with its outcome, duration and error.
// What changed is not exported: a change may be derived from a secret.
// Spans are recorded after the run, from its report, so that the engine
// needs no tracing of its own.
type tracer struct {
	tp *sdktrace.TracerProvider
	t  trace.Tracer
}

// tracesPath is OTLP/HTTP's path for traces, added to an endpoint given
// without a path.
const tracesPath = "/v1/traces"

// newTracer returns the tracer for endpoint, or nil when it is "".
func newTracer(ctx context.Context, endpoint, node string) (*tracer, error) {
	if endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("tracing endpoint %q: %w", endpoint, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = tracesPath
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("tracing endpoint %q: %w", endpoint, err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "fsgit"),
		attribute.String("host.name", node),
		attribute.String("fsgit.node", node),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &tracer{tp: tp, t: tp.Tracer("github.com/fsgit/fsgit/internal/agent")}, nil
}

// record exports one run.
func (t *tracer) record(rep *reconciler.Report, trigger string) {
	if t == nil || rep == nil {
		return
	}
	end := rep.Started.Add(rep.Duration.D())
	counts := map[reconciler.Outcome]int{}
	for _, r := range rep.Results {
		counts[r.Outcome]++
	}
	attrs := []attribute.KeyValue{
		attribute.String("fsgit.trigger", trigger),
		attribute.String("fsgit.site", rep.Site),
		attribute.String("fsgit.node", rep.Node),
		attribute.String("fsgit.role", rep.Role),
		attribute.String("fsgit.revision", rep.Revision),
		attribute.Int("fsgit.exit_code", rep.ExitCode()),
		attribute.Int("fsgit.resources", len(rep.Results)),
	}
	if rep.Stopped != "" {
		attrs = append(attrs, attribute.String("fsgit.stopped", rep.Stopped))
	}
	for _, o := range reconciler.Outcomes {
		if counts[o] > 0 {
			attrs = append(attrs, attribute.Int("fsgit.outcome."+string(o), counts[o]))
		}
	}
	_, span := t.t.Start(context.Background(), "fsgit.run", trace.WithTimestamp(rep.Started),
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	for _, r := range rep.Results {
		if r.Outcome == reconciler.Unchanged && !r.Refreshed {
			continue
		}
		ev := []attribute.KeyValue{
			attribute.String("fsgit.resource", string(r.ID)),
			attribute.String("fsgit.kind", r.ID.Kind()),
			attribute.String("fsgit.outcome", string(r.Outcome)),
			attribute.Float64("fsgit.duration_seconds", r.Duration.D().Seconds()),
		}
		if r.Refreshed {
			ev = append(ev, attribute.Bool("fsgit.refreshed", true))
		}
		if r.Reason != "" {
			ev = append(ev, attribute.String("fsgit.reason", r.Reason))
		}
		if r.Error != "" {
			ev = append(ev, attribute.String("fsgit.error", r.Error))
		}
		span.AddEvent("resource", trace.WithTimestamp(end), trace.WithAttributes(ev...))
	}
	if counts[reconciler.Failed] > 0 {
		span.SetStatus(codes.Error, fmt.Sprintf("%d resources failed", counts[reconciler.Failed]))
	}
	span.End(trace.WithTimestamp(end))
}

// shutdown sends what is buffered, within timeout.
func (t *tracer) shutdown(timeout time.Duration) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
