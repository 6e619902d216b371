package githttp

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInfoRefs measures the server's ceiling for idle polls: ref
// listings (GET info/refs?service=git-upload-pack, protocol v0, what an
// agent's idle poll asks) from 16 concurrent clients over kept-alive
// connections. It reports requests/s and the CPU time per request spent in
// this process (Go's HTTP server, the CGI handler, the clients) and in the
// git processes it starts (git http-backend and the git upload-pack it
// runs), from getrusage.
func BenchmarkInfoRefs(b *testing.B) {
	root := b.TempDir()
	git := func(dir string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+root, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	git("", "init", "-q", "--bare", "-b", "main", filepath.Join(root, "r.git"))
	git(filepath.Join(root, "r.git"), "config", "http.receivepack", "true")
	s, err := New(root, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	work := b.TempDir()
	git(work, "init", "-q", "-b", "main")
	git(work, "commit", "-q", "--allow-empty", "-m", "one")
	git(work, "push", "-q", s.URL("r.git"), "main")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := s.URL("r.git") + "/info/refs?service=git-upload-pack"
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	if err := get(); err != nil {
		b.Fatal(err)
	}
	var self0, kids0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids0)
	s.ResetStats()
	const workers = 16
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := get(); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if st := s.Stats(); st.Requests != int64(b.N) {
		b.Fatalf("served %d requests, want %d", st.Requests, b.N)
	}
	var self1, kids1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids1)
	cpu := func(a, z syscall.Rusage) float64 {
		d := time.Duration(z.Utime.Nano()-a.Utime.Nano()) + time.Duration(z.Stime.Nano()-a.Stime.Nano())
		return float64(d) / float64(time.Millisecond) / float64(b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(cpu(self0, self1), "go-cpu-ms/req")
	b.ReportMetric(cpu(kids0, kids1), "git-cpu-ms/req")
}
