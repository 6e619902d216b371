package reconciler

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for the reporter's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgress_LogsWhileTheStepRuns: a step that goes on longer than the
// interval shows in the log before it ends, with its latest update, and
// every update reaches the sink.
func TestProgress_LogsWhileTheStepRuns(t *testing.T) {
	var log syncBuffer
	var mu sync.Mutex
	var got []ProgressUpdate
	env := &Env{
		Log:           slog.New(slog.NewTextHandler(&log, nil)),
		ProgressEvery: 10 * time.Millisecond,
		OnProgress: func(u ProgressUpdate) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, u)
		},
	}
	p := env.StartProgress("package:tree", "apt-get install tree")
	p.Update(42, 100, UnitPercent, "Unpacking tree (amd64)")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "in progress") {
		if time.Now().After(deadline) {
			t.Fatal("nothing logged while the step ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	line := log.String()
	for _, want := range []string{`step="apt-get install tree"`, "done=42", "total=100", "unit=percent", `message="Unpacking tree (amd64)"`, "elapsed="} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s:\n%s", want, line)
		}
	}
	p.Finish()
	p.Finish()
	p.Update(99, 100, UnitPercent, "after the end")
	if !strings.Contains(log.String(), "step finished") {
		t.Errorf("a logged step's end is not logged:\n%s", log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Done != 42 || got[0].Finished || !got[1].Finished || got[1].Message != "Unpacking tree (amd64)" {
		t.Fatalf("sink got %+v, want the update and one finished update", got)
	}
}

// TestProgress_ShortStepStaysOutOfTheLog: a step shorter than the interval
// logs nothing, but its updates still reach the sink.
func TestProgress_ShortStepStaysOutOfTheLog(t *testing.T) {
	var log syncBuffer
	n := 0
	env := &Env{Log: slog.New(slog.NewTextHandler(&log, nil)), ProgressEvery: time.Hour, OnProgress: func(ProgressUpdate) { n++ }}
	p := env.StartProgress("artifact:/opt/a.jar", "download")
	p.Bytes(10, 0)
	p.Finish()
	if log.String() != "" || n != 2 {
		t.Fatalf("log %q, %d updates; want no log and 2 updates", log.String(), n)
	}
	// No logger and no sink: nothing to do, and nothing fails.
	(&Env{}).StartProgress("x:y", "step").Finish()
}
