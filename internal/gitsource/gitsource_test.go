package gitsource

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/fsgit/fsgit/internal/gittest"
	"github.com/go-git/go-git/v5/plumbing"
)

func openSource(tb testing.TB, url string, v *Verifier) *Source {
	tb.Helper()
	s, err := Open(Config{URL: url, Branch: "main", CacheDir: filepath.Join(tb.TempDir(), "cache"), Verifier: v})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func readFile(tb testing.TB, s *Source, hash, name string) string {
	tb.Helper()
	c, err := s.Commit(hash)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := fs.ReadFile(c.FS, name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestSource_Poll(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	for _, tc := range []struct{ name, url string }{
		{"http", srv.URL("site.git")},
		{"file", srv.FileURL("site.git")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := gittest.NewWork(t, tc.url)
			if tc.name == "file" {
				// The http case pushed main already; build on it.
				w.Git("fetch", "--quiet", "origin")
				w.Git("reset", "--quiet", "--hard", "origin/main")
			}
			c1 := w.CommitAndPush("one", map[string]string{"sites/x/a.cue": "a: 1\n"})
			s := openSource(t, tc.url, nil)

			tip, changed, err := s.Poll(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if tip != c1 || !changed {
				t.Fatalf("poll = %s %v, want %s true", tip, changed, c1)
			}
			if got := readFile(t, s, tip, "sites/x/a.cue"); got != "a: 1\n" {
				t.Fatalf("a.cue = %q", got)
			}

			srv.ResetStats()
			tip, changed, err = s.Poll(context.Background(), c1)
			if err != nil || tip != c1 || changed {
				t.Fatalf("idle poll = %s %v %v", tip, changed, err)
			}
			if st := s.Stats(); st.Fetches != 1 || st.Lists != 2 {
				t.Fatalf("stats after idle poll %+v, want 1 fetch 2 lists", st)
			}
			if tc.name == "http" {
				if st := srv.Stats(); st.UploadPacks != 0 || st.Requests != 1 {
					t.Fatalf("idle poll made %+v on the server, want one request, no upload-pack", st)
				}
			}

			c2 := w.CommitAndPush("two", map[string]string{"sites/x/a.cue": "a: 2\n"})
			tip, changed, err = s.Poll(context.Background(), c1)
			if err != nil || tip != c2 || !changed {
				t.Fatalf("poll after push = %s %v %v, want %s", tip, changed, err, c2)
			}
			if got := readFile(t, s, tip, "sites/x/a.cue"); got != "a: 2\n" {
				t.Fatalf("a.cue = %q", got)
			}
		})
	}
}

func TestSource_PollServerDown(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	w := gittest.NewWork(t, srv.URL("site.git"))
	c1 := w.CommitAndPush("one", map[string]string{"f": "1"})
	cache := filepath.Join(t.TempDir(), "cache")
	s, err := Open(Config{URL: srv.URL("site.git"), Branch: "main", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Poll(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(c1); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if _, _, err := s.Poll(context.Background(), c1); err == nil {
		t.Fatal("poll worked with the server down")
	}
	// A restarted agent still reads the applied commit from its cache.
	s2, err := Open(Config{URL: srv.URL("site.git"), Branch: "main", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if k := s2.Kept(); k != c1 {
		t.Fatalf("kept %q, want %s", k, c1)
	}
	if got := readFile(t, s2, c1, "f"); got != "1" {
		t.Fatalf("f = %q", got)
	}

	srv.Start()
	c2 := w.CommitAndPush("two", map[string]string{"f": "2"})
	tip, changed, err := s2.Poll(context.Background(), c1)
	if err != nil || tip != c2 || !changed {
		t.Fatalf("poll after restart = %s %v %v", tip, changed, err)
	}
}

func TestSource_PollBranchMissing(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	w := gittest.NewWork(t, srv.URL("site.git"))
	w.CommitAndPush("one", map[string]string{"f": "1"})
	s, err := Open(Config{URL: srv.URL("site.git"), Branch: "prod", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Poll(context.Background(), ""); !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("err = %v, want ErrBranchNotFound", err)
	}
}

func TestTreeFS(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	w := gittest.NewWork(t, srv.FileURL("site.git"))
	h := w.CommitAndPush("tree", map[string]string{
		"cue.mod/module.cue":     "module: \"x.example\"\n",
		"sites/example/site.cue": "package site\n",
		"sites/example/nodes/a.cue": "package site\n" +
			"a: 1\n",
		"sites/example.cue": "x: 1\n", // sorts between "example" and "example/" in git
		"README.md":         "hi\n",
	})
	s := openSource(t, srv.FileURL("site.git"), nil)
	if _, _, err := s.Poll(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	c, err := s.Commit(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(c.FS, "cue.mod/module.cue", "sites/example/site.cue", "sites/example/nodes/a.cue", "sites/example.cue", "README.md"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(c.FS, "sites/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	sub, err := fs.Sub(c.FS, "sites/example")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(sub, "nodes/a.cue"); err != nil || string(b) != "package site\na: 1\n" {
		t.Fatalf("sub read = %q %v", b, err)
	}
}

func TestSource_CacheBounded(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("site.git")
	w := gittest.NewWork(t, srv.URL("site.git"))
	const bound = 256 << 10
	cache := filepath.Join(t.TempDir(), "cache")
	s, err := Open(Config{URL: srv.URL("site.git"), Branch: "main", CacheDir: cache, CacheMaxBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	var first, tip string
	for i := range 24 {
		// 64 KiB of incompressible data per commit: 1.5 MiB in all.
		buf := make([]byte, 32<<10)
		_, _ = rand.Read(buf)
		h := w.CommitAndPush("big", map[string]string{"blob": hex.EncodeToString(buf), "small": "kept\n"})
		if i == 0 {
			first = h
		}
		tip, _, err = s.Poll(context.Background(), tip)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := s.Keep(first); err != nil {
				t.Fatal(err)
			}
		}
		size, err := CacheSize(cache)
		if err != nil {
			t.Fatal(err)
		}
		if size > bound+(128<<10) {
			t.Fatalf("after %d commits the cache holds %d bytes, bound %d", i+1, size, bound)
		}
	}
	if s.Stats().Compactions == 0 {
		t.Fatal("no compaction")
	}
	if got := readFile(t, s, tip, "small"); got != "kept\n" {
		t.Fatalf("tip unreadable after compaction: %q", got)
	}
	if got := readFile(t, s, first, "small"); got != "kept\n" {
		t.Fatalf("kept commit unreadable after compaction: %q", got)
	}
	// A fetch into the compacted (shallow) cache still works.
	h := w.CommitAndPush("after", map[string]string{"small": "after\n"})
	if tip, _, err = s.Poll(context.Background(), tip); err != nil || tip != h {
		t.Fatalf("poll after compaction = %s %v", tip, err)
	}
	if got := readFile(t, s, tip, "small"); got != "after\n" {
		t.Fatalf("small = %q", got)
	}
	if _, err := s.Commit(plumbing.ZeroHash.String()); err == nil {
		t.Fatal("reading a missing commit worked")
	}
}

// BenchmarkSource_IdlePoll measures a poll when the branch did not move:
// one ref listing over smart HTTP, and no objects.
func BenchmarkSource_IdlePoll(b *testing.B) {
	srv := gittest.NewServer(b)
	srv.NewRepo("site.git")
	w := gittest.NewWork(b, srv.URL("site.git"))
	h := w.CommitAndPush("one", map[string]string{"sites/example/site.cue": "package site\n"})
	s := openSource(b, srv.URL("site.git"), nil)
	if _, _, err := s.Poll(context.Background(), ""); err != nil {
		b.Fatal(err)
	}
	cache := s.cfg.CacheDir
	before, _ := CacheSize(cache)
	srv.ResetStats()
	b.ResetTimer()
	for b.Loop() {
		if _, changed, err := s.Poll(context.Background(), h); err != nil || changed {
			b.Fatal(changed, err)
		}
	}
	b.StopTimer()
	st := srv.Stats()
	after, _ := CacheSize(cache)
	b.ReportMetric(float64(st.BytesSent)/float64(b.N), "bytes-received/poll")
	b.ReportMetric(float64(st.UploadPacks)/float64(b.N), "fetches/poll")
	b.ReportMetric(float64(after-before), "cache-growth-bytes")
}
