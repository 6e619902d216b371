//go:build !lean

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
)

// TestServe_command runs fsgit serve over an empty repository: it listens
// where told, answers /healthz once it has polled, asks for the token it
// was given, and stops when its context ends.
func TestServe_command(t *testing.T) {
	gs := gittest.NewServer(t)
	gs.NewRepo("site.git")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	token := t.TempDir() + "/token"
	if err := os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, io.Discard, serveFlags{repo: gs.URL("site.git"), branch: "fsgit/status", listen: addr,
			interval: time.Second, stale: time.Hour, history: 10, tokenFile: token})
	}()
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz?format=json", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("0123456789abcdef0123")
		if code == http.StatusOK && strings.Contains(body, `"ok": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fsgit serve did not become healthy: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when its context ended")
	}
}
