package agent

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP endpoint on 127.0.0.1 that decodes what the
// agent's exporter (the OpenTelemetry Go SDK's otlptracehttp) sends, as a
// collector would: protobuf ExportTraceServiceRequest on /v1/traces.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []*tracepb.Span
	res   [][]*commonpb.KeyValue
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body := io.Reader(req.Body)
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					r.spans = append(r.spans, sp)
					r.res = append(r.res, rs.Resource.GetAttributes())
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.Key] = v.GetStringValue()
		default:
			m[kv.Key] = v.String()
		}
	}
	return m
}

// TestAgent_TracesRuns: with tracing.endpoint set, each run reaches an
// OTLP/HTTP endpoint as a span named fsgit.run, with the node, trigger,
// revision and outcome counts, and one event per resource that changed.
func TestAgent_TracesRuns(t *testing.T) {
	rcv := newOTLPReceiver(t)
	s := newSite(t)
	c1 := s.push("v1", map[string]string{"n1": catalogJSON(t, fileRes("/etc/app/app.conf", "v1\n"))})
	n := newNode(t, "n1", s.url, "100ms", `tracing: endpoint: "`+rcv.url+`"`)
	n.start()
	waitFor(t, "v1 on disk", func() bool { return n.read("/etc/app/app.conf") == "v1\n" })
	n.stop() // flushes the traces

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var found bool
	for i, sp := range rcv.spans {
		a := attrs(sp.Attributes)
		if sp.Name != "fsgit.run" || a["fsgit.revision"] != c1 || a["fsgit.outcome.created"] == "" {
			continue
		}
		found = true
		if a["fsgit.node"] != "n1" || a["fsgit.site"] != "test" || a["fsgit.trigger"] == "" {
			t.Errorf("run span attributes %v", a)
		}
		if ra := attrs(rcv.res[i]); ra["service.name"] != "fsgit" || ra["fsgit.node"] != "n1" {
			t.Errorf("resource attributes %v", ra)
		}
		if sp.EndTimeUnixNano <= sp.StartTimeUnixNano {
			t.Errorf("span from %d to %d", sp.StartTimeUnixNano, sp.EndTimeUnixNano)
		}
		var ev map[string]string
		for _, e := range sp.Events {
			if ea := attrs(e.Attributes); ea["fsgit.resource"] == "file:/etc/app/app.conf" {
				ev = ea
			}
		}
		if ev == nil || ev["fsgit.outcome"] != "created" || ev["fsgit.kind"] != "file" {
			t.Errorf("resource event %v, want file:/etc/app/app.conf created", ev)
		}
	}
	if !found {
		var names []string
		for _, sp := range rcv.spans {
			names = append(names, sp.Name+" "+attrs(sp.Attributes)["fsgit.revision"])
		}
		t.Fatalf("no fsgit.run span of %s with a created resource among %d spans: %v", c1, len(rcv.spans), names)
	}
}
