package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestEmbedder_Embed(t *testing.T) {
	e := Embedder{Dims: 384}
	a := e.Embed("The total purchase amount of a user in the last 7 days.")
	if len(a) != 384 {
		t.Fatalf("len = %d, want 384", len(a))
	}
	var n float64
	for _, x := range a {
		n += float64(x) * float64(x)
	}
	if math.Abs(n-1) > 1e-5 {
		t.Errorf("norm² = %v, want 1", n)
	}
	if b := e.Embed("The total purchase amount of a user in the last 7 days."); cosine(a, b) < 0.9999 {
		t.Errorf("same text, cosine %v: not deterministic", cosine(a, b))
	}
	near := cosine(a, e.Embed("user purchase amount"))
	far := cosine(a, e.Embed("zebra xylophone quartz"))
	if near <= far {
		t.Errorf("cosine(related)=%v <= cosine(unrelated)=%v", near, far)
	}
	if empty := e.Embed("  ...  "); math.IsNaN(float64(empty[0])) {
		t.Error("empty text gives NaN")
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newHandler(Embedder{Dims: 16}, "test", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, path, body string
		code                     int
	}{
		{"ready", "GET", "/.well-known/ready", "", 204},
		{"live", "GET", "/.well-known/live", "", 204},
		{"meta", "GET", "/meta", "", 200},
		{"vectors", "POST", "/vectors", `{"text":"hello world","config":{"pooling_strategy":"masked_mean","task_type":"passage"}}`, 200},
		{"vectors slash", "POST", "/vectors/", `{"text":"hello"}`, 200},
		{"bad json", "POST", "/vectors", `{`, 400},
		{"wrong method", "GET", "/vectors", "", 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewBufferString(tc.body))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.code)
			}
			if tc.name == "vectors" {
				var v vecResponse
				if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
					t.Fatal(err)
				}
				if v.Dims != 16 || len(v.Vector) != 16 || v.Text != "hello world" {
					t.Errorf("got %+v", v)
				}
			}
		})
	}
}
