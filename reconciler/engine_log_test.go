package reconciler

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestEngine_LogResult: RunOptions.LogResult sees every outcome and keeps
// the ones it refuses out of the log.
func TestEngine_LogResult(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.root, "data"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := h.engine(Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	cat := catalog(res("tfile:/data", spec{"content": "new", "destructive": true}), res("tfile:/new", spec{"content": "x"}))
	var mu sync.Mutex
	var asked []ID
	mustRun(t, e, cat, RunOptions{Root: h.root, LogResult: func(r *Result) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.ID)
		return r.Outcome != PendingDestroy
	}})
	if len(asked) != 2 {
		t.Fatalf("LogResult asked about %v, want both resources", asked)
	}
	if out := logs.String(); strings.Contains(out, "tfile:/data") || !strings.Contains(out, "id=tfile:/new outcome=created") {
		t.Fatalf("log:\n%s", out)
	}
}
