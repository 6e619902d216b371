package invariants

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// TestExampleSite: the example site keeps every invariant without a
// waiver, and every check ran on it (its catalogs have a client of the
// Iceberg catalog, a MariaDB server, a Weaviate and secrets).
func TestExampleSite(t *testing.T) {
	site, err := desired.LoadDir(context.Background(), "../../sites/example")
	if err != nil {
		t.Fatal(err)
	}
	probs, cats := site.VetCatalogs(context.Background())
	if desired.HasErrors(probs) {
		t.Fatalf("example does not vet: %v", probs)
	}
	in, err := FromSite(site, cats)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Config.Waive) > 0 {
		t.Errorf("the example waives %v", in.Config.Waive)
	}
	if in.Config.Secrets == nil {
		t.Error("the example does not say where secrets come from, so secret-provided checks nothing")
	}
	c := newChecker(in)
	if len(c.consumers()) == 0 {
		t.Error("no client of the Iceberg catalog found in the example")
	}
	res := Check(in)
	for _, f := range res.Findings {
		t.Errorf("finding: %s", f)
	}
	if len(res.Waived)+len(res.Unused) > 0 {
		t.Errorf("waived %v, unused %v", res.Waived, res.Unused)
	}
}

func TestHostMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, client string
		want            bool
	}{
		{"%", "spark-1.internal", true},
		{"localhost", "localhost", true},
		{"localhost", "spark-1.internal", false},
		{"10.1.%", "10.1.2.3", true},
		{"10.1.%", "10.11.2.3", false},
		{"spark-_.internal", "spark-1.internal", true},
		{"spark-_.internal", "spark-12.internal", false},
		{"%.internal", "Spark-1.INTERNAL", true},
		{"a.b", "axb", false}, // . is literal
	} {
		if got := hostMatches(c.pattern, c.client); got != c.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", c.pattern, c.client, got, c.want)
		}
	}
}

// fakeWhere positions every value at "site.cue:<what>".
type fakeWhere struct{}

func (fakeWhere) Resource(id reconciler.ID, field ...string) string {
	return "site.cue:" + string(id) + "/" + strings.Join(field, ".")
}
func (fakeWhere) Data(path ...string) string { return "" }

func spec(t *testing.T, id string, v any) reconciler.Resource {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return reconciler.Resource{ID: reconciler.ID(id), Spec: b}
}

// TestPorts: a unit's port, a container's host port and MariaDB's port
// collide only on the same protocol and overlapping addresses.
func TestPorts(t *testing.T) {
	n := Node{Name: "n", Where: fakeWhere{}, Catalog: &reconciler.Catalog{Resources: []reconciler.Resource{
		spec(t, "file:/etc/mysql/x.cnf", map[string]any{"content": "[mysqld]\nport = 9000\nbind-address = 127.0.0.1\n"}),
		spec(t, "file:/etc/systemd/system/exp.service", map[string]any{"content": "[Service]\nExecStart=/usr/bin/exp --web.listen-address=:9100\n"}),
		spec(t, "docker.container:a", map[string]any{"ports": []any{map[string]any{"host": 9100, "proto": "tcp", "hostIP": "0.0.0.0"}, map[string]any{"host": 9000, "proto": "udp", "hostIP": "0.0.0.0"}}}),
		spec(t, "docker.container:b", map[string]any{"ports": []any{map[string]any{"host": 9000, "proto": "tcp", "hostIP": "10.0.0.1"}}}),
	}}}
	res := Check(Input{Nodes: []Node{n}})
	if len(res.Findings) != 1 {
		t.Fatalf("findings: %v", res.Findings)
	}
	f := res.Findings[0]
	if f.Check != CheckPortConflict || f.Side.Resource != "docker.container:a" || f.Other.Resource != "file:/etc/systemd/system/exp.service" ||
		!strings.Contains(f.Msg, "tcp port 9100") || f.Side.Pos != "site.cue:docker.container:a/ports.0.host" || !strings.Contains(f.Msg, "site.cue:file:/etc/systemd/system/exp.service/content") {
		t.Errorf("finding: %s", f)
	}
}

// TestWaiver: a waiver matches one check of one resource on either side.
func TestWaiver(t *testing.T) {
	mk := func(w ...Waiver) Input {
		return Input{Config: Config{Waive: w}, Nodes: []Node{{Name: "n", Where: fakeWhere{}, Catalog: &reconciler.Catalog{Resources: []reconciler.Resource{
			spec(t, "docker.container:a", map[string]any{"ports": []any{map[string]any{"host": 80, "proto": "tcp"}}}),
			spec(t, "docker.container:b", map[string]any{"ports": []any{map[string]any{"host": 80, "proto": "tcp"}}}),
		}}}}}
	}
	res := Check(mk(Waiver{Check: CheckPortConflict, Node: "n", Resource: "docker.container:b", Reason: "b moves next week"}))
	if len(res.Findings) != 0 || len(res.Waived) != 1 || res.Waived[0].Waived != "b moves next week" || len(res.Unused) != 0 {
		t.Errorf("waived by the other side: %+v", res)
	}
	res = Check(mk(Waiver{Check: CheckEndpoint, Node: "n", Resource: "docker.container:b", Reason: "another check"}))
	if len(res.Findings) != 1 || len(res.Unused) != 1 {
		t.Errorf("a waiver of another check: %+v", res)
	}
}

// TestFinding_roundTrip: a finding, as plans carry it, reads back.
func TestFinding_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[Config](t, jsondoctest.Options{})
}
