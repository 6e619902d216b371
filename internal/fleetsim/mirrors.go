package fleetsim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsgit/fsgit/internal/githttp"
)

// Mirrors configures the topology beyond one repository, idle: Pollers
// lightweight nodes poll Mirrors read-only copies of the site repository
// (node i polls mirror i mod Mirrors), each its own git http-backend host,
// with one ref listing per poll, the request an agent's idle poll makes.
type Mirrors struct {
	Pollers, Mirrors int
	Interval, Jitter time.Duration
	// Window is how long the load is measured, after a warm-up of one
	// poll cycle.
	Window time.Duration
	// Dir holds the repositories (a temporary directory when empty).
	Dir string
}

// MirrorLoad is one mirror's load.
type MirrorLoad struct {
	RequestsPerSecond, BytesPerRequest float64
	// P99 is the 99th percentile of a poll's duration, as the pollers saw
	// it; Errors counts failed polls.
	P99    time.Duration
	Errors int64
}

// RunMirrors measures the load on each mirror.
func RunMirrors(ctx context.Context, m Mirrors) ([]MirrorLoad, error) {
	if m.Dir == "" {
		d, err := os.MkdirTemp("", "fleetsim-mirrors")
		if err != nil {
			return nil, fmt.Errorf("mirror simulation: %w", err)
		}
		defer os.RemoveAll(d)
		m.Dir = d
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	primary := filepath.Join(m.Dir, "primary", "site.git")
	if err := newBare(primary); err != nil {
		return nil, err
	}
	site := &siteRepo{dir: filepath.Join(m.Dir, "work"), remote: primary}
	if _, err := site.commit([]string{"node0000", "node0001", "node0002"}, "v1"); err != nil {
		return nil, err
	}
	servers := make([]*githttp.Server, m.Mirrors)
	for i := range servers {
		root := filepath.Join(m.Dir, fmt.Sprintf("mirror%d", i))
		// A mirror is a plain copy kept in sync by pushes (or the
		// hosting's replication); it needs no write access from nodes.
		if _, err := git("", "clone", "--quiet", "--mirror", primary, filepath.Join(root, "site.git")); err != nil {
			return nil, err
		}
		s, err := startServer(ctx, root)
		if err != nil {
			return nil, err
		}
		servers[i] = s
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute}
	var mu sync.Mutex
	lat := make([][]time.Duration, m.Mirrors)
	errs := make([]int64, m.Mirrors)
	measuring := make(chan struct{})
	var wg sync.WaitGroup
	for i := range m.Pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := i % m.Mirrors
			url := servers[k].URL("site.git") + "/info/refs?service=git-upload-pack"
			wait := rand.N(m.Interval + m.Jitter)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				start := time.Now()
				err := poll(ctx, client, url)
				d := time.Since(start)
				select {
				case <-measuring:
					mu.Lock()
					lat[k] = append(lat[k], d)
					if err != nil && ctx.Err() == nil {
						errs[k]++
					}
					mu.Unlock()
				default:
				}
				wait = m.Interval
				if m.Jitter > 0 {
					wait += rand.N(m.Jitter)
				}
			}
		}()
	}
	sleep(ctx, m.Interval+m.Jitter)
	for _, s := range servers {
		s.ResetStats()
	}
	close(measuring)
	start := time.Now()
	sleep(ctx, m.Window)
	elapsed := time.Since(start).Seconds()
	out := make([]MirrorLoad, m.Mirrors)
	for i, s := range servers {
		c := s.Stats()
		out[i].RequestsPerSecond = float64(c.Requests) / elapsed
		if c.Requests > 0 {
			out[i].BytesPerRequest = float64(c.BytesSent) / float64(c.Requests)
		}
	}
	cancel()
	wg.Wait()
	for i := range out {
		l := lat[i]
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		if len(l) > 0 {
			out[i].P99 = l[min(len(l)-1, len(l)*99/100)]
		}
		out[i].Errors = errs[i]
	}
	return out, nil
}

// poll lists the refs, as an agent's idle poll does.
func poll(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("poll %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("poll %s: %w", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("poll %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("poll %s: %s", url, resp.Status)
	}
	return nil
}
