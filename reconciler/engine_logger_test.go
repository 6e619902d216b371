package reconciler

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"testing"
)

// TestResourceLogger: the lazy logger writes what log.With("resource",
// id) writes, through text and JSON handlers, with attributes and groups
// added before and after, and keeps its parent's level.
func TestResourceLogger(t *testing.T) {
	use := func(l *slog.Logger) {
		l.Info("plain", "k", 1)
		l.Debug("hidden", "k", 2)
		l.With("a", "b").Warn("with", "k", 3)
		l.WithGroup("g").Info("group", "k", 4)
		l.WithGroup("g").With("x", 1).WithGroup("h").Error("nested", "k", 5)
		l.WithGroup("").Info("empty group", slog.Group("inline", "k", 6))
		l.LogAttrs(context.Background(), slog.LevelInfo, "attrs", slog.Int("k", 7))
	}
	stamp := regexp.MustCompile(`time=\S+ |"time":"[^"]*",`)
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var want, got bytes.Buffer
		parent := func(b *bytes.Buffer) *slog.Logger { return slog.New(newHandler(b)).With("node", "n1") }
		use(parent(&want).With("resource", "file:/etc/x"))
		use(resourceLogger(parent(&got), "file:/etc/x"))
		w, g := stamp.ReplaceAllString(want.String(), ""), stamp.ReplaceAllString(got.String(), "")
		if g != w {
			t.Errorf("%s: lazy logger wrote\n%s\nWith writes\n%s", name, g, w)
		}
		if !bytes.Contains(got.Bytes(), []byte("nested")) || bytes.Contains(got.Bytes(), []byte("hidden")) {
			t.Errorf("%s: levels not kept:\n%s", name, g)
		}
	}
}
