package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/fsgit/fsgit/reconciler"
)

var classRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z][_0-9A-Za-z]*$`) })

// vectorClient talks to Weaviate's REST and GraphQL API.
type vectorClient struct {
	cfg     Vector
	http    *http.Client
	secrets reconciler.SecretResolver
}

// httpError is a non-2xx answer.
type httpError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, e.Body)
}

// do sends a JSON request and decodes a JSON answer into out.
func (v *vectorClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := v.cfg.URL + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, u, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if v.cfg.APIKey != nil && !v.cfg.APIKey.IsZero() {
		key, err := v.secrets.Resolve(ctx, *v.cfg.APIKey)
		if err != nil {
			return fmt.Errorf("resolve weaviate api key: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+string(key.Reveal()))
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{Method: method, URL: u, Status: resp.StatusCode, Body: strings.TrimSpace(string(b[:min(len(b), 500)]))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	}
	return nil
}

// objectID is the feature's object ID: stable, so that a second verify
// replaces the object instead of adding another.
func objectID(f Feature) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("fsgit-verify:feature:"+f.Name)).String()
}

// write stores the feature's metadata object, vectorized by the class's
// module, and reads its vector back. It returns the object's ID.
func (v *vectorClient) write(ctx context.Context, f Feature) (string, []string, error) {
	c := v.cfg
	if !classRE().MatchString(c.Class) {
		return "", nil, fmt.Errorf("class %q is not a Weaviate class name", c.Class)
	}
	if c.Vectorizer == "" || c.Vectorizer == "none" {
		return "", nil, fmt.Errorf("class %s has no vectorizer module (vectorizer %q): its description cannot be vectorized by Weaviate", c.Class, c.Vectorizer)
	}
	for _, p := range []string{"name", "description"} {
		if len(c.Properties) > 0 && !slices.Contains(c.Properties, p) {
			return "", nil, fmt.Errorf("class %s declares no property %q (it has %v)", c.Class, p, c.Properties)
		}
	}
	id := objectID(f)
	obj := map[string]any{
		"class":      c.Class,
		"id":         id,
		"properties": map[string]any{"name": f.Name, "description": f.Description},
	}
	path := "/v1/objects/" + c.Class + "/" + id
	// HEAD says whether it exists (204 or 404); PUT replaces an existing
	// object (and answers 500, not 404, for a missing one).
	how := "replaced"
	err := v.do(ctx, http.MethodHead, path, nil, nil)
	var he *httpError
	switch {
	case err == nil:
		err = v.do(ctx, http.MethodPut, path, obj, nil)
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		how = "created"
		err = v.do(ctx, http.MethodPost, "/v1/objects", obj, nil)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store object %s: %w", id, err)
	}
	var got struct {
		Properties map[string]any       `json:"properties"`
		Vector     []float32            `json:"vector"`
		Vectors    map[string][]float32 `json:"vectors"`
	}
	if err := v.do(ctx, http.MethodGet, path+"?include=vector", nil, &got); err != nil {
		return "", nil, fmt.Errorf("read object %s back: %w", id, err)
	}
	vec := got.Vector
	if len(vec) == 0 {
		for _, name := range slices.Sorted(maps.Keys(got.Vectors)) {
			vec = got.Vectors[name]
			break
		}
	}
	if len(vec) == 0 {
		return "", nil, fmt.Errorf("object %s has no vector: the %s module did not vectorize it", id, c.Vectorizer)
	}
	if got.Properties["description"] != f.Description {
		return "", nil, fmt.Errorf("object %s reads back description %q", id, got.Properties["description"])
	}
	return id, []string{
		fmt.Sprintf("%s object %s {name: %s}", how, id, f.Name),
		fmt.Sprintf("its vector, from %s: %d dimensions %s", c.Vectorizer, len(vec), head(vec, 4)),
	}, nil
}

func head(v []float32, n int) string {
	parts := make([]string, 0, n+1)
	for i := 0; i < len(v) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%.4f", v[i]))
	}
	if len(v) > n {
		parts = append(parts, "...")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// search runs a nearText query and lists the nearest features; ours is the
// object written by the previous step.
func (v *vectorClient) search(ctx context.Context, query string, limit int, ours string) ([]string, error) {
	c := v.cfg
	if !classRE().MatchString(c.Class) {
		return nil, fmt.Errorf("class %q is not a Weaviate class name", c.Class)
	}
	concept, err := json.Marshal(query)
	if err != nil {
		return nil, err
	}
	gql := fmt.Sprintf(`{ Get { %s(nearText: {concepts: [%s]}, limit: %d) { name description _additional { id distance } } } }`,
		c.Class, concept, limit)
	var ans struct {
		Data struct {
			Get map[string][]struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Additional  struct {
					ID       string  `json:"id"`
					Distance float64 `json:"distance"`
				} `json:"_additional"`
			} `json:"Get"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := v.do(ctx, http.MethodPost, "/v1/graphql", map[string]string{"query": gql}, &ans); err != nil {
		return nil, err
	}
	if len(ans.Errors) > 0 {
		msgs := make([]string, len(ans.Errors))
		for i, e := range ans.Errors {
			msgs[i] = e.Message
		}
		return nil, fmt.Errorf("graphql: %s", strings.Join(msgs, "; "))
	}
	hits := ans.Data.Get[c.Class]
	if len(hits) == 0 {
		return nil, fmt.Errorf("no %s object is near %q", c.Class, query)
	}
	var lines []string
	rank := 0
	for i, h := range hits {
		lines = append(lines, fmt.Sprintf("%d. %s (distance %.4f): %s", i+1, h.Name, h.Additional.Distance, h.Description))
		if h.Additional.ID == ours && rank == 0 {
			rank = i + 1
		}
	}
	if rank > 0 {
		lines = append(lines, fmt.Sprintf("the feature just written ranks #%d", rank))
	} else {
		lines = append(lines, fmt.Sprintf("the feature just written is not among the %d nearest", len(hits)))
	}
	return lines, nil
}
