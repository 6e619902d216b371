package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// blob returns n deterministic bytes that differ per seed.
func blob(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	sum := sha256.Sum256([]byte(seed))
	for len(out) < n {
		out = append(out, sum[:]...)
		sum = sha256.Sum256(sum[:])
	}
	return out[:n]
}

func hexSum(b []byte) string { return sha256Hex(b) }

// origin is a real HTTP server on loopback serving artifact versions, with
// misbehaving paths, that counts the requests per path.
type origin struct {
	*httptest.Server
	mu    sync.Mutex
	count map[string]int
}

var (
	v1 = blob("v1", 3<<20+17)
	v2 = blob("v2", 2<<20+5)
)

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{count: map[string]int{}}
	mux := http.NewServeMux()
	serve := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("/v1.jar", serve(v1))
	mux.HandleFunc("/mirror/v1.jar", serve(v1))
	mux.HandleFunc("/v2.jar", serve(v2))
	mux.HandleFunc("/wrong.jar", serve(blob("not v1", len(v1))))
	mux.HandleFunc("/truncated.jar", func(w http.ResponseWriter, r *http.Request) {
		// Announce the whole length, send half, drop the connection.
		w.Header().Set("Content-Length", fmt.Sprint(len(v1)))
		_, _ = w.Write(v1[:len(v1)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	mux.HandleFunc("/flaky.jar", func(w http.ResponseWriter, r *http.Request) {
		if o.requests("/flaky.jar") <= 2 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		serve(v1)(w, r)
	})
	mux.HandleFunc("/stall-once.jar", func(w http.ResponseWriter, r *http.Request) {
		if o.requests("/stall-once.jar") > 1 {
			serve(v1)(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(v1)))
		_, _ = w.Write(v1[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.count[r.URL.Path]++
		o.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

func (o *origin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.count {
		n += c
	}
	return n
}

// fixture is one managed root with its artifact cache.
type fixture struct {
	t     *testing.T
	root  string
	cache string
	kind  *reconciler.Typed[spec]
	log   bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, root: t.TempDir()}
	f.cache = filepath.Join(f.root, "var/lib/fsgit/artifacts")
	f.kind = New(Options{CacheDir: f.cache, MaxRetries: 2, RetryDelay: 10 * time.Millisecond, StallTimeout: 300 * time.Millisecond})
	return f
}

func (f *fixture) env() *reconciler.Env {
	return &reconciler.Env{
		Root:  f.root,
		Log:   slog.New(slog.NewTextHandler(&f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cache: reconciler.NewCache(),
	}
}

func (f *fixture) resource(url string, content []byte, extra map[string]any) *reconciler.Resource {
	f.t.Helper()
	spec := map[string]any{
		"path": "/opt/app/lib/app.jar", "url": url, "sha256": hexSum(content),
		"maxSize": 1 << 30, "owner": "root", "group": "root", "mode": "0644", "ensure": "present",
	}
	for k, v := range extra {
		spec[k] = v
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		f.t.Fatal(err)
	}
	return &reconciler.Resource{ID: "artifact:/opt/app/lib/app.jar", Spec: raw}
}

func (f *fixture) target() string { return filepath.Join(f.root, "opt/app/lib/app.jar") }

// run plans r and applies the plan, as the engine does; it returns the
// plan and the apply error.
func (f *fixture) run(r *reconciler.Resource) (*reconciler.Plan, error) {
	f.t.Helper()
	if err := f.kind.Validate(r); err != nil {
		f.t.Fatalf("validate: %v", err)
	}
	p, err := f.kind.Plan(context.Background(), f.env(), r)
	if err != nil {
		f.t.Fatalf("plan: %v", err)
	}
	if p.HasChanges() && (p.MaxClass() < reconciler.Destructive || r.AllowDestroy) {
		return p, p.Apply(context.Background())
	}
	return p, nil
}

func (f *fixture) mustRun(r *reconciler.Resource) *reconciler.Plan {
	f.t.Helper()
	p, err := f.run(r)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return p
}

func (f *fixture) content() []byte {
	f.t.Helper()
	b, err := os.ReadFile(f.target())
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// hashed reports whether the kind hashed the target since the last call.
func (f *fixture) hashed() bool {
	out := strings.Contains(f.log.String(), "hashing file")
	f.log.Reset()
	return out
}

type stamp struct{ ino, mtime, ctime int64 }

func stampOf(t *testing.T, path string) stamp {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return stamp{int64(st.Ino), st.Mtim.Nano(), st.Ctim.Nano()}
}

func changeFields(p *reconciler.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Field+":"+c.Class.String())
	}
	return out
}

func TestArtifact_Validate(t *testing.T) {
	good := map[string]any{"path": "/opt/a.jar", "url": "https://example.org/a.jar", "sha256": hexSum(v1), "maxSize": 10, "owner": "root", "group": "root", "mode": "0644", "ensure": "present"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name    string
		spec    map[string]any
		wantErr string
	}{
		{"ok", good, ""},
		{"file url", with("url", "file:///srv/a.jar"), ""},
		// A missing or bad sha256, another scheme, a negative maxSize and
		// a bad mode are the schema's to refuse (internal/desired
		// TestVet_KindConstraints).
		{"relative file url", with("url", "file://a.jar"), "absolute path"},
		{"path differs from ID", with("path", "/opt/b.jar"), "differs"},
		{"unknown field", with("checksum", "x"), "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.spec)
			err := New(Options{}).Validate(&reconciler.Resource{ID: "artifact:/opt/a.jar", Spec: raw})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestArtifact_ApplyTwice: the second run changes nothing, writes nothing,
// downloads nothing and does not even re-hash the file.
func TestArtifact_ApplyTwice(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	p := f.mustRun(r)
	if got := changeFields(p); !reflect.DeepEqual(got, []string{"content:safe"}) || !strings.Contains(p.Changes[0].After, "(download ") {
		t.Fatalf("first plan %+v", p.Changes)
	}
	if !bytes.Equal(f.content(), v1) {
		t.Fatal("content is not v1")
	}
	before := stampOf(t, f.target())
	recBefore := stampOf(t, recordPath(f.cache, f.target()))
	f.hashed()
	p = f.mustRun(r)
	if p.HasChanges() {
		t.Fatalf("second run plans %v", changeFields(p))
	}
	if after := stampOf(t, recordPath(f.cache, f.target())); after != recBefore {
		t.Fatal("second run rewrote the verification record")
	}
	if f.hashed() {
		t.Fatal("second run re-hashed a file whose stat had not moved")
	}
	if after := stampOf(t, f.target()); after != before {
		t.Fatalf("second run wrote the file: %+v -> %+v", before, after)
	}
	if n := o.total(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if p.Observed["sha256"] != hexSum(v1) {
		t.Fatalf("observed %v", p.Observed)
	}
}

// TestArtifact_SwitchVersions goes v1, v2, back to v1 with the server
// down, and to v2 again: each version is downloaded once, rollback works
// offline.
func TestArtifact_SwitchVersions(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	f.mustRun(f.resource(o.URL+"/v1.jar", v1, nil))
	f.mustRun(f.resource(o.URL+"/v2.jar", v2, nil))
	if !bytes.Equal(f.content(), v2) {
		t.Fatal("content is not v2")
	}
	url := o.URL
	o.Close()
	for i, want := range [][]byte{v1, v2, v1} {
		name := map[bool]string{true: "/v1.jar", false: "/v2.jar"}[bytes.Equal(want, v1)]
		p := f.mustRun(f.resource(url+name, want, nil))
		if len(p.Changes) != 1 || !strings.HasSuffix(p.Changes[0].After, "(from cache)") {
			t.Fatalf("switch %d: changes %+v, want content from cache", i, p.Changes)
		}
		if !bytes.Equal(f.content(), want) {
			t.Fatalf("switch %d: wrong content", i)
		}
	}
	if o.requests("/v1.jar") != 1 || o.requests("/v2.jar") != 1 {
		t.Fatalf("requests v1 %d v2 %d, want 1 each", o.requests("/v1.jar"), o.requests("/v2.jar"))
	}
}

// TestArtifact_URLChangeSameDigest: a new URL for the same sha256 is no
// change and no download.
func TestArtifact_URLChangeSameDigest(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	f.mustRun(f.resource(o.URL+"/v1.jar", v1, nil))
	if p := f.mustRun(f.resource(o.URL+"/mirror/v1.jar", v1, nil)); p.HasChanges() {
		t.Fatalf("url change with the same digest plans %v", changeFields(p))
	}
	if n := o.requests("/mirror/v1.jar"); n != 0 {
		t.Fatalf("%d requests to the new url", n)
	}
}

// TestArtifact_RestoreFromCache: a file changed on disk is restored from
// the cache, with no request, and a mode change alone is a chmod.
func TestArtifact_RestoreFromCache(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	f.mustRun(r)
	if err := os.WriteFile(f.target(), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := f.mustRun(r)
	if len(p.Changes) != 1 || !strings.HasSuffix(p.Changes[0].After, "(from cache)") {
		t.Fatalf("changes %+v", p.Changes)
	}
	if !bytes.Equal(f.content(), v1) || o.total() != 1 {
		t.Fatalf("not restored from cache (requests %d)", o.total())
	}

	if err := os.Chmod(f.target(), 0o600); err != nil {
		t.Fatal(err)
	}
	before := stampOf(t, f.target())
	p = f.mustRun(r)
	if got := changeFields(p); !reflect.DeepEqual(got, []string{"mode:safe"}) {
		t.Fatalf("changes %v, want mode only", got)
	}
	if after := stampOf(t, f.target()); after.ino != before.ino || after.mtime != before.mtime {
		t.Fatal("mode change rewrote the file")
	}
	f.hashed()
	p = f.mustRun(r)
	if rehashed := f.hashed(); p.HasChanges() || rehashed {
		t.Fatalf("after chmod: changes %v, re-hashed %v", changeFields(p), rehashed)
	}
}

// TestArtifact_Failures: a download that fails leaves the old file in
// place, nothing in the cache, no temporary file, and is retried only when
// another attempt could help.
func TestArtifact_Failures(t *testing.T) {
	cases := []struct {
		name     string
		path     string
		content  []byte
		extra    map[string]any
		down     bool
		wantErr  string
		requests int
		errType  any
	}{
		{name: "wrong checksum", path: "/wrong.jar", content: v1, wantErr: "sha256 is", requests: 1, errType: new(*ChecksumError)},
		{name: "truncated body", path: "/truncated.jar", content: v1, wantErr: "after 3 attempts", requests: 3},
		{name: "not found", path: "/missing.jar", content: v1, wantErr: "404", requests: 1},
		{name: "over the size cap", path: "/v1.jar", content: v1, extra: map[string]any{"maxSize": 1000}, wantErr: "cap of 1000 bytes", requests: 1, errType: new(*SizeError)},
		{name: "server down", path: "/v1.jar", content: v1, down: true, wantErr: "connection refused", requests: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			f := newFixture(t)
			f.mustRun(f.resource(o.URL+"/v2.jar", v2, nil))
			if tc.down {
				o.Close()
			}
			before := o.total()
			_, err := f.run(f.resource(o.URL+tc.path, tc.content, tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if tc.errType != nil && !errors.As(err, tc.errType) {
				t.Fatalf("error %v is not a %T", err, tc.errType)
			}
			if n := o.total() - before; n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
			if !bytes.Equal(f.content(), v2) {
				t.Fatal("the old file was touched by a failed download")
			}
			if _, err := os.Stat(entryPath(f.cache, hexSum(tc.content))); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("failed download reached the cache: %v", err)
			}
			for _, dir := range []string{filepath.Join(f.cache, "sha256"), filepath.Dir(f.target())} {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".") {
						t.Fatalf("temporary file %s left in %s", e.Name(), dir)
					}
				}
			}
		})
	}
}

// TestArtifact_Retries: transient failures (503, a stalled body) are
// retried and the download succeeds.
func TestArtifact_Retries(t *testing.T) {
	for _, tc := range []struct {
		path     string
		requests int
	}{{"/flaky.jar", 3}, {"/stall-once.jar", 2}} {
		t.Run(tc.path, func(t *testing.T) {
			o := newOrigin(t)
			f := newFixture(t)
			f.mustRun(f.resource(o.URL+tc.path, v1, nil))
			if !bytes.Equal(f.content(), v1) {
				t.Fatal("wrong content")
			}
			if n := o.requests(tc.path); n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

// TestArtifact_CorruptCacheEntry: a cache entry that rotted is caught while
// it is copied, never reaches the path, and is fetched again.
func TestArtifact_CorruptCacheEntry(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	f.mustRun(r)
	entry := entryPath(f.cache, hexSum(v1))
	if err := os.Chmod(entry, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entry, blob("rot", len(v1)), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.target()); err != nil {
		t.Fatal(err)
	}
	f.mustRun(r)
	if !bytes.Equal(f.content(), v1) || o.requests("/v1.jar") != 2 {
		t.Fatalf("not re-fetched (requests %d)", o.requests("/v1.jar"))
	}
}

func TestArtifact_Progress(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	env := f.env()
	var last [2]int64
	finished := false
	env.OnProgress = func(u reconciler.ProgressUpdate) {
		if u.ID != r.ID || u.Unit != reconciler.UnitBytes {
			t.Errorf("progress for %s in %q", u.ID, u.Unit)
		}
		last, finished = [2]int64{u.Done, u.Total}, u.Finished
	}
	p, err := f.kind.Plan(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if last != [2]int64{int64(len(v1)), int64(len(v1))} || !finished {
		t.Fatalf("last progress %v (finished %v), want %d of %d, finished", last, finished, len(v1), len(v1))
	}
}

// TestArtifact_SharedDigest: two resources with one digest in one run
// download it once.
func TestArtifact_SharedDigest(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	env := f.env()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, p := range []string{"/opt/a.jar", "/opt/b.jar"} {
		raw, _ := json.Marshal(map[string]any{"path": p, "url": o.URL + "/v1.jar", "sha256": hexSum(v1), "maxSize": 1 << 30, "owner": "root", "group": "root", "mode": "0644", "ensure": "present"})
		r := &reconciler.Resource{ID: reconciler.NewID("artifact", p), Spec: raw}
		plan, err := f.kind.Plan(context.Background(), env, r)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- plan.Apply(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := o.requests("/v1.jar"); n != 1 {
		t.Fatalf("%d downloads, want 1", n)
	}
}

func TestArtifact_FileURL(t *testing.T) {
	src := filepath.Join(t.TempDir(), "v2.jar")
	if err := os.WriteFile(src, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.mustRun(f.resource("file://"+src, v2, nil))
	if !bytes.Equal(f.content(), v2) {
		t.Fatal("wrong content")
	}
}

func TestArtifact_PlanDelete(t *testing.T) {
	o := newOrigin(t)
	f := newFixture(t)
	r := f.resource(o.URL+"/v1.jar", v1, nil)
	f.mustRun(r)
	p, err := f.kind.PlanDelete(context.Background(), f.env(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got := changeFields(p); !reflect.DeepEqual(got, []string{"ensure:safe"}) {
		t.Fatalf("intact artifact: %v", got)
	}
	if err := os.WriteFile(f.target(), []byte("local edit"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err = f.kind.PlanDelete(context.Background(), f.env(), r); err != nil {
		t.Fatal(err)
	}
	if got := changeFields(p); !reflect.DeepEqual(got, []string{"ensure:destructive"}) {
		t.Fatalf("edited artifact: %v", got)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.target()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("not removed")
	}
}
