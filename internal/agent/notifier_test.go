package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// receiver is a test HTTP endpoint on loopback that keeps what it gets;
// it fails the first failFirst requests, and may hang.
type receiver struct {
	mu        sync.Mutex
	bodies    []string
	failFirst int
	hang      chan struct{}
	srv       *httptest.Server
}

func newReceiver(t *testing.T, failFirst int, hang bool) *receiver {
	r := &receiver{failFirst: failFirst}
	if hang {
		r.hang = make(chan struct{})
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hang != nil {
			select {
			case <-r.hang:
			case <-req.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failFirst > 0 {
			r.failFirst--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		r.bodies = append(r.bodies, string(b))
	}))
	t.Cleanup(func() {
		if r.hang != nil {
			close(r.hang)
		}
		r.srv.Close()
	})
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func (r *receiver) has(sub string) bool {
	for _, b := range r.got() {
		if strings.Contains(b, sub) {
			return true
		}
	}
	return false
}

// TestNotify_transitions: transitions reach a generic webhook, an
// Alertmanager API and a Slack incoming webhook (behind a URL file) on
// loopback: converged, a destroy held (no longer converged), a refused
// commit, a hold's end, converged again (resolving the alert). A Slack
// endpoint that fails twice gets the events by retry; an endpoint that
// hangs never delays a run.
func TestNotify_transitions(t *testing.T) {
	generic := newReceiver(t, 0, false)
	am := newReceiver(t, 0, false)
	slack := newReceiver(t, 2, false)
	hung := newReceiver(t, 0, true)
	slackURL := filepath.Join(t.TempDir(), "slack.url")
	if err := os.WriteFile(slackURL, []byte(slack.srv.URL+"/services/T000/B000/XXXXSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSite(t)
	s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a1\n"))})
	n := newNode(t, "n1", s.url, "1h", `watch: enabled: false
notify: {
	minInterval: "0s"
	maxAttempts: 4
	endpoints: [
		{url: "`+hung.srv.URL+`/hang"},
		{url: "`+generic.srv.URL+`/hook"},
		{url: "`+am.srv.URL+`/api/v2/alerts", format: "alertmanager"},
		{urlFile: "`+slackURL+`", format: "slack"},
	]
}`)
	n.start()
	waitFor(t, "converged event", func() bool { return generic.has(`"kind":"converged"`) })
	cl := NewClient(n.sock)
	ctx := context.Background()

	// A file the node did not write, to remove without allowDestroy: held.
	if err := os.WriteFile(n.path("/etc/precious"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.push("v2", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a1\n"), absentNoDestroy("/etc/precious"))})
	start := time.Now()
	if last, err := cl.Run(ctx, RunRequest{}, nil); err != nil || last.Report == nil {
		t.Fatalf("run: %+v, %v", last, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run took %s with a hung endpoint", d)
	}
	waitFor(t, "not-converged and pending-destroy events", func() bool {
		return generic.has(`"kind":"not-converged"`) && generic.has(`"kind":"pending-destroy"`) && generic.has(`file:/etc/precious`)
	})
	s.push("bad", map[string]string{"n1": "{not json"})
	if _, err := cl.Run(ctx, RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refused event", func() bool { return generic.has(`"kind":"refused"`) })

	var ans HoldAnswer
	if err := cl.Post(ctx, HoldPath, HoldRequest{Node: true, For: jsondoc.Seconds(500 * time.Millisecond), Reason: "short", By: "alice"}, &ans); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hold-ended event", func() bool { return generic.has(`"kind":"hold-ended"`) })

	s.push("v3", map[string]string{"n1": catalogJSON(t, fileRes("/etc/a", "a1\n"))})
	if _, err := cl.Run(ctx, RunRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "converged again, resolved", func() bool { return strings.Count(strings.Join(generic.got(), "\n"), `"kind":"converged"`) == 2 })

	// Alertmanager: the alert raised, then resolved (endsAt).
	waitFor(t, "alertmanager resolve", func() bool {
		var raised, resolved bool
		for _, b := range am.got() {
			var alerts []alertmanagerAlert
			if err := json.Unmarshal([]byte(b), &alerts); err != nil || len(alerts) != 1 {
				t.Fatalf("alertmanager body %s: %v", b, err)
			}
			a := alerts[0]
			if a.Labels["alertname"] == "FsgitNotConverged" && a.Labels["node"] == "n1" {
				raised = raised || a.EndsAt.IsZero()
				resolved = resolved || !a.EndsAt.IsZero()
			}
		}
		return raised && resolved
	})
	// Slack: retried past its two failures; every message is text.
	waitEvery(t, "slack messages", 100*time.Millisecond, func() bool { return slack.has("no longer converged") && slack.has(":white_check_mark:") })
	for _, b := range slack.got() {
		var m map[string]any
		if err := json.Unmarshal([]byte(b), &m); err != nil || len(m) != 1 || m["text"] == nil {
			t.Fatalf("slack body %s", b)
		}
	}
	if strings.Contains(n.logs.String(), "XXXXSECRET") {
		t.Fatal("the Slack URL's token reached the log")
	}
	m, _ := cl.Get(ctx, MetricsPath, nil)
	if !strings.Contains(string(m), `fsgit_notifications_total{result="sent"}`) {
		t.Fatalf("metrics lack notifications:\n%s", m)
	}
}

// absentNoDestroy is a file resource to remove, without allowDestroy.
func absentNoDestroy(p string) reconciler.Resource {
	r := absentRes(p)
	r.AllowDestroy = false
	return r
}

// TestEvent_roundTrip: the generic event document round-trips.
func TestEvent_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[Event](t, jsondoctest.Options{})
}
