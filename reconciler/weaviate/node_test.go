package weaviate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/docker"
)

// Images built by scripts/build-images.sh. weaviateBumped is the same
// server binary under a second image ID: the stand-in for an upgrade.
const (
	weaviateImage  = "fsgit.local/weaviate:1.35.2"
	weaviateBumped = "fsgit.local/weaviate:1.35.2-r2"
	standinImage   = "fsgit.local/t2v-transformers:standin-1"
	testLabel      = "fsgit-test"
)

func dockerClient(tb testing.TB) *client.Client {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs the Docker Engine and the local Weaviate image (-short)")
	}
	cl, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Ping(ctx); err != nil {
		missing(tb, "Docker Engine not reachable: %v", err)
	}
	for _, img := range []string{weaviateImage, weaviateBumped, standinImage} {
		if _, err := cl.ImageInspect(ctx, img); err != nil {
			missing(tb, "image %s is missing (%v): build it with scripts/build-images.sh", img, err)
		}
	}
	return cl
}

func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// node is the weaviate_node profile's resources, for one test: a private
// network, the vectorizer stand-in (alias t2v-transformers), Weaviate with
// the seed's environment and its data bind-mounted from the host (under
// the run's root), and the FeatureMetadata class.
type node struct {
	tag, root, url    string
	port              int
	net, t2v, wv, cls *reconciler.Resource
	wvSpec            map[string]any
	clsSpec           map[string]any
	kinds             struct {
		network   *reconciler.Typed[docker.NetworkSpec]
		container *reconciler.Typed[docker.ContainerSpec]
		class     *reconciler.Typed[ClassSpec]
	}
}

func newNode(t *testing.T) (*node, *client.Client) {
	t.Helper()
	cl := dockerClient(t)
	n := &node{root: t.TempDir()}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n.tag = "w-" + hex.EncodeToString(b)
	t.Cleanup(func() { cleanup(t, cl, n.tag) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	n.url = fmt.Sprintf("http://127.0.0.1:%d", n.port)
	// The data directory is the file kinds' job in the profile.
	if err := os.MkdirAll(filepath.Join(n.root, "var/lib/weaviate"), 0o755); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{testLabel: n.tag}
	netName := "fsgit-test-weaviate-" + n.tag
	n.net = res(t, "docker.network:"+netName, map[string]any{
		"name": netName, "ensure": "present", "driver": "bridge", "internal": false, "labels": labels, "dockerHost": docker.DefaultHost,
	})
	n.t2v = res(t, "docker.container:t2v-transformers-"+n.tag, map[string]any{
		"name": "t2v-transformers-" + n.tag, "ensure": "running", "image": standinImage, "command": []string{},
		"env": map[string]string{"ENABLE_CUDA": "0"}, "secretEnv": map[string]any{}, "ports": []any{}, "mounts": []any{},
		"networks": []map[string]any{{"name": netName, "aliases": []string{"t2v-transformers"}}},
		"restart":  "unless-stopped", "labels": labels, "dockerHost": docker.DefaultHost,
	})
	n.wvSpec = map[string]any{
		"name": "weaviate-" + n.tag, "ensure": "running", "image": weaviateImage,
		"command": []string{"--host", "0.0.0.0", "--port", "8080", "--scheme", "http"},
		"env": map[string]string{
			"QUERY_DEFAULTS_LIMIT":                    "25",
			"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
			"PERSISTENCE_DATA_PATH":                   "/var/lib/weaviate",
			"DEFAULT_VECTORIZER_MODULE":               "text2vec-transformers",
			"ENABLE_MODULES":                          "text2vec-transformers",
			"TRANSFORMERS_INFERENCE_API":              "http://t2v-transformers:8080",
			"CLUSTER_HOSTNAME":                        "node1",
		},
		"secretEnv": map[string]any{},
		"ports":     []map[string]any{{"host": n.port, "container": 8080, "proto": "tcp", "hostIP": "127.0.0.1"}},
		"mounts":    []map[string]any{{"type": "bind", "source": "/var/lib/weaviate", "target": "/var/lib/weaviate", "readOnly": false}},
		"networks":  []map[string]any{{"name": netName, "aliases": []string{"weaviate"}}},
		"restart":   "on-failure:0", "labels": labels, "dockerHost": docker.DefaultHost,
	}
	n.wv = res(t, "docker.container:weaviate-"+n.tag, n.wvSpec)
	n.clsSpec = map[string]any{
		"url": n.url, "class": "FeatureMetadata", "vectorizer": "text2vec-transformers",
		"description":  "Feature metadata of the feature store",
		"moduleConfig": map[string]any{"text2vec-transformers": map[string]any{"vectorizeClassName": false}},
		"properties": []map[string]any{
			{"name": "name", "dataType": []string{"text"}, "tokenization": "field"},
			{"name": "description", "dataType": []string{"text"}},
		},
		"invertedIndexConfig": map[string]any{"bm25": map[string]any{"b": 0.75, "k1": 1.2}},
		"ensure":              "present",
	}
	n.cls = res(t, "weaviate.class:FeatureMetadata", n.clsSpec)
	n.kinds.network = docker.NewNetwork()
	n.kinds.container = docker.NewContainer()
	n.kinds.class = NewClass()
	t.Cleanup(func() { n.kinds.network.Close(); n.kinds.container.Close() })
	return n, cl
}

func cleanup(tb testing.TB, cl *client.Client, tag string) {
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+tag))
	cs, _ := cl.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, c := range cs {
		if err := cl.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	}
	ns, _ := cl.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		if err := cl.NetworkRemove(ctx, n.ID); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	}
}

func res(tb testing.TB, id string, spec any) *reconciler.Resource {
	tb.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return &reconciler.Resource{ID: reconciler.ID(id), Mode: reconciler.ModeEnforce, Spec: b}
}

func (n *node) env(noop bool) *reconciler.Env {
	return &reconciler.Env{Root: n.root, Noop: noop, Cache: reconciler.NewCache(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// converge runs the profile's resources once in dependency order, like
// the engine: plan, then apply unless the plan is destructive and not
// allowed. It returns each resource's plan.
func (n *node) converge(t *testing.T, wv, cls *reconciler.Resource) map[reconciler.ID]*reconciler.Plan {
	t.Helper()
	env := n.env(false)
	out := map[reconciler.ID]*reconciler.Plan{}
	steps := []struct {
		k reconciler.Kind
		r *reconciler.Resource
	}{{n.kinds.network, n.net}, {n.kinds.container, n.t2v}, {n.kinds.container, wv}, {n.kinds.class, cls}}
	for _, s := range steps {
		if err := s.k.Validate(s.r); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		p, err := s.k.Plan(ctx, env, s.r)
		if err != nil {
			cancel()
			t.Fatalf("plan %s: %v", s.r.ID, err)
		}
		out[s.r.ID] = p
		if p.HasChanges() && (p.MaxClass() < reconciler.Destructive || s.r.AllowDestroy) {
			if err := p.Apply(ctx); err != nil {
				cancel()
				t.Fatalf("apply %s: %v", s.r.ID, err)
			}
		}
		cancel()
	}
	return out
}

func (n *node) with(t *testing.T, base map[string]any, id reconciler.ID, kv ...any) *reconciler.Resource {
	spec := map[string]any{}
	for k, v := range base {
		spec[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		spec[kv[i].(string)] = kv[i+1]
	}
	return res(t, string(id), spec)
}

func startedAt(t *testing.T, cl *client.Client, name string) (string, string) {
	t.Helper()
	c, err := cl.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, c.State.StartedAt
}

func post(t *testing.T, url string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	r, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	data, _ := io.ReadAll(r.Body)
	if r.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", url, r.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decoding %s: %v", data, err)
		}
	}
}

// nearText returns the names of FeatureMetadata objects nearest to concept
// and the object count.
func nearText(t *testing.T, url, concept string) (names []string, count int) {
	t.Helper()
	var out struct {
		Data struct {
			Get struct {
				FeatureMetadata []struct{ Name string } `json:"FeatureMetadata"`
			}
			Aggregate struct {
				FeatureMetadata []struct {
					Meta struct{ Count int }
				} `json:"FeatureMetadata"`
			}
		}
		Errors []any
	}
	q := fmt.Sprintf(`{ Get { FeatureMetadata(nearText: {concepts: [%q]}, limit: 2) { name } } Aggregate { FeatureMetadata { meta { count } } } }`, concept)
	post(t, url+"/v1/graphql", map[string]string{"query": q}, &out)
	if len(out.Errors) > 0 {
		t.Fatalf("graphql errors: %v", out.Errors)
	}
	for _, o := range out.Data.Get.FeatureMetadata {
		names = append(names, o.Name)
	}
	if len(out.Data.Aggregate.FeatureMetadata) > 0 {
		count = out.Data.Aggregate.FeatureMetadata[0].Meta.Count
	}
	return names, count
}

func fields(p *reconciler.Plan) string {
	var f []string
	for _, c := range p.Changes {
		f = append(f, c.Field+"("+c.Class.String()+")")
	}
	return strings.Join(f, " ")
}

// TestWeaviateNode converges the weaviate_node profile on the real Docker
// Engine from nothing, applies it twice, writes features and finds them
// with nearText through the vectorizer, then bumps the Weaviate image and
// checks the objects survived the recreate.
func TestWeaviateNode(t *testing.T) {
	n, cl := newNode(t)

	// Noop from nothing: the class is reported, not waited for.
	noop := n.kinds.class
	p, err := noop.Plan(context.Background(), n.env(true), n.cls)
	if err != nil || p.Action != reconciler.ActionCreate {
		t.Fatalf("noop plan before the container exists: %v %+v", err, p)
	}

	start := time.Now()
	first := n.converge(t, n.wv, n.cls)
	t.Logf("first converge from nothing: %s", time.Since(start).Round(time.Millisecond))
	for id, p := range first {
		if p.Action != reconciler.ActionCreate {
			t.Errorf("first run: %s action %q, want create", id, p.Action)
		}
	}
	wvName, t2vName := n.wv.Name(), n.t2v.Name()
	wvID, wvStarted := startedAt(t, cl, wvName)
	t2vID, t2vStarted := startedAt(t, cl, t2vName)

	start = time.Now()
	second := n.converge(t, n.wv, n.cls)
	t.Logf("second converge (nothing to do): %s", time.Since(start).Round(time.Millisecond))
	for id, p := range second {
		if p.HasChanges() {
			t.Errorf("second run: %s has changes: %s", id, fields(p))
		}
	}
	if id, s := startedAt(t, cl, wvName); id != wvID || s != wvStarted {
		t.Error("second run restarted or recreated weaviate")
	}
	if id, s := startedAt(t, cl, t2vName); id != t2vID || s != t2vStarted {
		t.Error("second run restarted or recreated t2v-transformers")
	}
	// Persistent data on the host, under the root.
	if entries, err := os.ReadDir(filepath.Join(n.root, "var/lib/weaviate")); err != nil || len(entries) == 0 {
		t.Errorf("no Weaviate data in <root>/var/lib/weaviate: %v", err)
	}

	// The seed's verification: write features, search by meaning.
	for _, f := range [][2]string{
		{"user_7day_purchase_amount", "The total purchase amount of a user in the last 7 days."},
		{"item_color", "Dominant colour of the item image."},
		{"session_count_30d", "Number of app sessions opened in the last 30 days."},
	} {
		post(t, n.url+"/v1/objects", map[string]any{"class": "FeatureMetadata", "properties": map[string]string{"name": f[0], "description": f[1]}}, nil)
	}
	names, count := nearText(t, n.url, "user purchase amount")
	if count != 3 || len(names) == 0 || names[0] != "user_7day_purchase_amount" {
		t.Fatalf("nearText = %v (count %d), want user_7day_purchase_amount first of 3", names, count)
	}

	// Image bumped in the CUE: only weaviate is recreated, data kept.
	bumped := n.with(t, n.wvSpec, n.wv.ID, "image", weaviateBumped)
	p, err = n.kinds.container.Plan(context.Background(), n.env(true), bumped)
	if err != nil || fields(p) != "image(disruptive)" {
		t.Fatalf("bump plan = %q, %v; want image(disruptive) only", fields(p), err)
	}
	start = time.Now()
	third := n.converge(t, bumped, n.cls)
	t.Logf("converge after the image bump (recreate + ready): %s", time.Since(start).Round(time.Millisecond))
	if id, _ := startedAt(t, cl, wvName); id == wvID {
		t.Error("weaviate not recreated after the image bump")
	}
	if id, s := startedAt(t, cl, t2vName); id != t2vID || s != t2vStarted {
		t.Error("image bump of weaviate touched t2v-transformers")
	}
	if p := third[n.cls.ID]; p.HasChanges() {
		t.Errorf("class after the recreate has changes: %s", fields(p))
	}
	names, count = nearText(t, n.url, "user purchase amount")
	if count != 3 || len(names) == 0 || names[0] != "user_7day_purchase_amount" {
		t.Fatalf("after the recreate nearText = %v (count %d): data lost?", names, count)
	}
}

// TestClass_Changes runs the class kind's changes against one real Weaviate.
func TestClass_Changes(t *testing.T) {
	n, _ := newNode(t)
	n.converge(t, n.wv, n.cls)
	k := n.kinds.class
	plan := func(r *reconciler.Resource) *reconciler.Plan {
		t.Helper()
		if err := k.Validate(r); err != nil {
			t.Fatal(err)
		}
		p, err := k.Plan(context.Background(), n.env(false), r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	props := func(extra ...map[string]any) []map[string]any {
		return append([]map[string]any{
			{"name": "name", "dataType": []string{"text"}, "tokenization": "field"},
			{"name": "description", "dataType": []string{"text"}},
		}, extra...)
	}

	// A declared property is added in place; then quiet.
	added := n.with(t, n.clsSpec, n.cls.ID, "properties", props(map[string]any{"name": "owner", "dataType": []string{"text"}, "description": "team"}))
	p := plan(added)
	if fields(p) != "properties.owner(safe)" {
		t.Fatalf("add plan = %q", fields(p))
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := plan(added); p.HasChanges() {
		t.Fatalf("after adding: %q", fields(p))
	}

	// Mutable settings are updated in place.
	tuned := n.with(t, n.clsSpec, n.cls.ID, "properties", props(map[string]any{"name": "owner", "dataType": []string{"text"}, "description": "owning team"}),
		"invertedIndexConfig", map[string]any{"bm25": map[string]any{"b": 0.7, "k1": 1.2}}, "description", "Feature metadata (v2)")
	p = plan(tuned)
	if fields(p) != "description(safe) invertedIndexConfig.bm25(safe) properties.owner.description(safe)" {
		t.Fatalf("tune plan = %q", fields(p))
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := plan(tuned); p.HasChanges() {
		t.Fatalf("after tuning: %q", fields(p))
	}

	// What Weaviate cannot change in place is destructive, with a reason.
	retyped := n.with(t, n.clsSpec, n.cls.ID, "vectorizer", "none", "properties", props(map[string]any{"name": "owner", "dataType": []string{"int"}}),
		"invertedIndexConfig", map[string]any{"bm25": map[string]any{"b": 0.7, "k1": 1.2}}, "description", "Feature metadata (v2)")
	p = plan(retyped)
	if p.MaxClass() != reconciler.Destructive || !strings.Contains(fields(p), "vectorizer(destructive)") || !strings.Contains(fields(p), "properties.owner.dataType(destructive)") {
		t.Fatalf("retype plan = %q", fields(p))
	}
	for _, c := range p.Changes {
		if c.Class == reconciler.Destructive && !strings.Contains(c.After, "Weaviate cannot") {
			t.Errorf("change %s gives no reason: %q", c.Field, c.After)
		}
	}
	// Removing a declared property: Weaviate cannot delete one.
	p = plan(n.with(t, n.clsSpec, n.cls.ID, "invertedIndexConfig", map[string]any{"bm25": map[string]any{"b": 0.7, "k1": 1.2}}, "description", "Feature metadata (v2)"))
	if fields(p) != "properties.owner(destructive)" || !strings.Contains(p.Changes[0].After, "cannot delete a property") {
		t.Errorf("undeclared property plan = %q %+v", fields(p), p.Changes)
	}
	// Deleting the class is destructive; with allowDestroy it runs.
	gone := n.with(t, n.clsSpec, n.cls.ID, "ensure", "absent")
	gone.AllowDestroy = true
	p = plan(gone)
	if p.Action != reconciler.ActionDelete || p.MaxClass() != reconciler.Destructive {
		t.Fatalf("absent plan = %s %q", p.Action, fields(p))
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := plan(gone); p.HasChanges() {
		t.Errorf("after delete: %q", fields(p))
	}
}
