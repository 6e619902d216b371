package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
)

// maxBody caps a request body; Weaviate sends one text per request.
const maxBody = 4 << 20

// vecRequest is the body of POST /vectors, as Weaviate sends it and as the
// real transformers-inference container answers it.
type vecRequest struct {
	Text   string          `json:"text"`
	Config json.RawMessage `json:"config,omitempty"`
}

// vecResponse is the answer to POST /vectors.
type vecResponse struct {
	Text   string    `json:"text"`
	Vector []float32 `json:"vector,omitempty"`
	Dims   int       `json:"dims"`
	Error  string    `json:"error,omitempty"`
}

// newHandler serves the transformers-inference contract with emb.
func newHandler(emb Embedder, version string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	mux.HandleFunc("GET /.well-known/live", ok)
	mux.HandleFunc("GET /.well-known/ready", ok)
	mux.HandleFunc("GET /meta", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"model": map[string]any{
				"name":        "fsgit-t2v-standin",
				"description": "deterministic hashing embedder standing in for a sentence transformer; lexical similarity only",
				"dims":        emb.Dims,
				"version":     version,
			},
		})
	})
	vectors := func(w http.ResponseWriter, r *http.Request) {
		var req vecRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, vecResponse{Error: "decoding request: " + err.Error()})
			return
		}
		vec := emb.Embed(req.Text)
		writeJSON(w, http.StatusOK, vecResponse{Text: req.Text, Vector: vec, Dims: len(vec)})
	}
	mux.HandleFunc("POST /vectors", vectors)
	mux.HandleFunc("POST /vectors/", vectors)
	return logRequests(mux, log)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// logRequests logs failed requests only: a vectorizer answers one request
// per object and a log line for each would drown the container's log.
func logRequests(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.code >= 400 {
			log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", rec.code)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
