package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/fsgit/fsgit/internal/atomicfile"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/file"
)

// ChecksumError is a download (or a cache entry) whose sha256 is not the
// one asked for. It is not retried: the same bytes would come again.
type ChecksumError struct {
	Source    string
	Got, Want string
}

// Error says where the bytes came from and both digests.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("verify %s: sha256 is %s, want %s", e.Source, e.Got, e.Want)
}

// SizeError is a download larger than its cap. It is not retried.
type SizeError struct {
	Source string
	Max    int64
}

// Error says which download and its cap.
func (e *SizeError) Error() string {
	return fmt.Sprintf("download %s: larger than the cap of %d bytes", e.Source, e.Max)
}

// permanentError marks a failure that another attempt would not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }

// retryable reports whether another attempt could succeed.
func retryable(ctx context.Context, err error) bool {
	var p *permanentError
	return ctx.Err() == nil && !errors.As(err, &p)
}

func fetchKey(c cache, sum string) string { return "artifact.fetch\x00" + c.id() + "\x00" + sum }

// fetch makes sure the cache holds the entry of s.SHA256, downloading it
// when missing. Resources of one run that share a digest download it once.
func (k *Artifact) fetch(ctx context.Context, env *reconciler.Env, id reconciler.ID, s *spec, c cache) error {
	get := func() (any, error) {
		if _, err := c.fsys.Stat(c.entry(s.SHA256)); err == nil {
			return nil, nil
		}
		return nil, k.download(ctx, env, id, s, c)
	}
	if env.Cache == nil {
		_, err := get()
		return err
	}
	_, err := env.Cache.Once(fetchKey(c, s.SHA256), get)
	return err
}

// download fetches s.URL into the cache entry, retrying transient
// failures with jittered exponential backoff.
func (k *Artifact) download(ctx context.Context, env *reconciler.Env, id reconciler.ID, s *spec, c cache) error {
	entry := c.entry(s.SHA256)
	if err := c.fsys.MkdirAll(filepath.Dir(entry), 0o700); err != nil {
		return fmt.Errorf("create artifact cache: %w", err)
	}
	bo := reconciler.RetryBackOff(k.opts.RetryDelay, k.opts.MaxRetryDelay)
	for attempt := 0; ; attempt++ {
		err := k.downloadOnce(ctx, env, id, s, c, entry)
		if err == nil {
			return nil
		}
		if !retryable(ctx, err) || attempt >= k.opts.MaxRetries {
			if attempt > 0 {
				return fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return err
		}
		wait := bo.NextBackOff()
		logger(env).Warn("artifact download failed; retrying", "id", id, "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("download %s: %w", redactURL(s.URL), ctx.Err())
		case <-time.After(wait):
		}
	}
}

// downloadOnce makes one attempt: the body goes to a temporary file in the
// cache directory, hashed and counted on the way, and replaces its entry
// (atomically, read-only) only when the size and digest are right.
func (k *Artifact) downloadOnce(ctx context.Context, env *reconciler.Env, id reconciler.ID, s *spec, c cache, entry string) error {
	src := redactURL(s.URL)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, total, err := k.open(ctx, s.URL, src, s.MaxSize)
	if err != nil {
		return err
	}
	defer body.Close()

	// A stalled transfer is cancelled, and retried, after StallTimeout
	// without a byte.
	stall := time.AfterFunc(k.opts.StallTimeout, cancel)
	defer stall.Stop()
	var n int64
	var werr error
	err = atomicfile.Replace(c.fsys, entry, atomicfile.Options{UID: -1, GID: -1, Mode: 0o444}, func(w io.Writer) error {
		h := sha256.New()
		progress := env.StartProgress(id, "download "+src)
		pr := &progressReader{r: io.LimitReader(body, s.MaxSize+1), total: total, report: progress, stall: stall, stallAfter: k.opts.StallTimeout}
		n, werr = io.CopyBuffer(io.MultiWriter(w, h), pr, make([]byte, 256<<10))
		pr.flush()
		progress.Finish()
		switch {
		case werr != nil:
			if ctx.Err() != nil && errors.Is(werr, context.Canceled) {
				werr = fmt.Errorf("stalled for %s: %w", k.opts.StallTimeout, werr)
			}
			werr = fmt.Errorf("download %s: %w", src, werr)
		case n > s.MaxSize:
			werr = permanent(&SizeError{Source: src, Max: s.MaxSize})
		case total >= 0 && n != total:
			werr = fmt.Errorf("download %s: truncated: %d of %d bytes", src, n, total)
		default:
			if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
				werr = permanent(&ChecksumError{Source: src, Got: got, Want: s.SHA256})
			}
		}
		return werr
	})
	if err != nil {
		if werr == nil {
			// The cache directory failed, not the transfer.
			return permanent(fmt.Errorf("store the download in the cache: %w", err))
		}
		return err
	}
	logger(env).Info("artifact downloaded", "id", id, "url", src, "bytes", n)
	return nil
}

// open starts reading raw (http, https or file) and returns the body and
// its length, -1 when unknown.
func (k *Artifact) open(ctx context.Context, raw, src string, max int64) (io.ReadCloser, int64, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, 0, permanent(fmt.Errorf("parse url: %w", err))
	}
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, 0, permanent(fmt.Errorf("open %s: %w", src, err))
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, permanent(fmt.Errorf("stat %s: %w", src, err))
		}
		if fi.Size() > max {
			f.Close()
			return nil, 0, permanent(&SizeError{Source: src, Max: max})
		}
		return f, fi.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, 0, permanent(fmt.Errorf("download %s: %w", src, err))
	}
	resp, err := k.client.Do(req)
	if err != nil {
		// The error names the URL in full; say it again without secrets.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("download %s: %w", src, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("download %s: %s", src, resp.Status)
		switch {
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
			return nil, 0, err
		default:
			return nil, 0, permanent(err)
		}
	}
	if resp.ContentLength > max {
		resp.Body.Close()
		return nil, 0, permanent(&SizeError{Source: src, Max: max})
	}
	return resp.Body, resp.ContentLength, nil
}

// progressReader counts what it reads, reports progress at most every
// 100ms, and pushes back the stall timer on every read that brings bytes.
type progressReader struct {
	r          io.Reader
	total      int64
	report     *reconciler.Progress
	stall      *time.Timer
	stallAfter time.Duration
	done       int64
	last       time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.stall.Reset(p.stallAfter)
		if time.Since(p.last) >= 100*time.Millisecond {
			p.last = time.Now()
			p.report.Bytes(p.done, p.total)
		}
	}
	return n, err
}

func (p *progressReader) flush() { p.report.Bytes(p.done, p.total) }

// place copies the cache entry of want to path (in fsys) atomically,
// verifying its digest on the way: a corrupt entry never reaches path.
func place(c cache, want string, fsys *rootfs.FS, path string, perms file.Perms) error {
	f, err := c.fsys.Open(c.entry(want))
	if err != nil {
		return fmt.Errorf("open cache entry: %w", err)
	}
	defer f.Close()
	return atomicfile.Replace(fsys, path, perms.Options(), func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.CopyBuffer(io.MultiWriter(w, h), f, make([]byte, 256<<10)); err != nil {
			return fmt.Errorf("copy from cache: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return &ChecksumError{Source: "cache entry " + c.fsys.HostPath(c.entry(want)), Got: got, Want: want}
		}
		return nil
	})
}
