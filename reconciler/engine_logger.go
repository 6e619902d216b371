package reconciler

import (
	"context"
	"log/slog"
)

// resourceLogger returns log with the attribute resource=id, as
// log.With("resource", id) would, built lazily: the engine gives every
// resource of every run a logger (Env.Log), and a quiet run logs nothing
// through almost all of them, while With makes a text or JSON handler
// format the attribute at once.
func resourceLogger(log *slog.Logger, id ID) *slog.Logger {
	return slog.New(&resourceHandler{next: log.Handler(), id: string(id)})
}

// resourceHandler adds resource=id to what it handles, first among the
// record's attributes: where a handler that With had given it would have
// put it.
type resourceHandler struct {
	next slog.Handler
	id   string
}

func (h *resourceHandler) attr() slog.Attr { return slog.String("resource", h.id) }

// Enabled is the next handler's.
func (h *resourceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle passes r on, with the resource first among its attributes.
func (h *resourceHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(h.attr())
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs gives the next handler the resource, then attrs.
func (h *resourceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.next.WithAttrs(append([]slog.Attr{h.attr()}, attrs...))
}

// WithGroup gives the next handler the resource, outside the group.
func (h *resourceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.next.WithAttrs([]slog.Attr{h.attr()}).WithGroup(name)
}
