package weaviate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// errNotFound is returned by get for a 404.
var errNotFound = errors.New("not found")

// api is a Weaviate REST endpoint with an optional API key.
type api struct {
	http   *http.Client
	base   string
	apiKey *reconciler.Secret
}

// maxResponse caps a response body: a schema is small.
const maxResponse = 16 << 20

func (a *api) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.base, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.apiKey != nil {
		req.Header.Set("Authorization", "Bearer "+string(a.apiKey.Reveal()))
	}
	res, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	if res.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s %s: %w", method, path, errNotFound)
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, res.StatusCode, weaviateError(data))
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

// weaviateError extracts the messages of a Weaviate error body.
func weaviateError(body []byte) string {
	var e struct {
		Error []struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		msgs := make([]string, len(e.Error))
		for i, m := range e.Error {
			msgs[i] = m.Message
		}
		return strings.Join(msgs, "; ")
	}
	if len(body) > 300 {
		body = body[:300]
	}
	return string(body)
}

// ready reports whether /v1/.well-known/ready answers 2xx.
func (a *api) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return a.do(ctx, http.MethodGet, "/v1/.well-known/ready", nil, nil)
}

// waitReady polls readiness until it answers or timeout passes.
func (a *api) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		err := a.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("weaviate at %s not ready after %s: %w", a.base, timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func classPath(class string) string { return "/v1/schema/" + url.PathEscape(class) }
