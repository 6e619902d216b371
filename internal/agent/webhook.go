package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// WebhookPath is where the webhook listener takes push events (POST).
const WebhookPath = "/v1/webhook"

// webhook takes signed push events and triggers a poll, at most one per
// minInterval: it never applies anything itself.
type webhook struct {
	a      *Agent
	secret []byte
	limit  *rate.Limiter
	srv    *http.Server
}

// startWebhook listens on the configured address.
func (a *Agent) startWebhook(cfg *WebhookConfig) (*webhook, error) {
	secret, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	if len(secret) < 16 {
		return nil, fmt.Errorf("webhook secret in %s: at least 16 characters", cfg.SecretFile)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for webhooks on %s: %w", cfg.Listen, err)
	}
	every := cfg.MinInterval.D()
	if every <= 0 {
		every = 5 * time.Second
	}
	w := &webhook{a: a, secret: secret, limit: rate.NewLimiter(rate.Every(every), 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WebhookPath, w.serve)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("webhook listener", "err", err)
		}
	}()
	a.log.Info("webhook listening", "addr", ln.Addr().String())
	return w, nil
}

func (w *webhook) close(ctx context.Context) error { return w.srv.Shutdown(ctx) }

// verify checks the request's signature: GitHub's X-Hub-Signature-256 or
// fsgit's X-Fsgit-Signature (sha256=<hex HMAC-SHA256 of the body>), or
// GitLab's X-Gitlab-Token (the secret itself). It names the sender.
func (w *webhook) verify(h http.Header, body []byte) (string, error) {
	mac := hmac.New(sha256.New, w.secret)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range []struct{ header, sender string }{{"X-Hub-Signature-256", "github"}, {"X-Fsgit-Signature", "generic"}} {
		v := h.Get(s.header)
		if v == "" {
			continue
		}
		got, err := hex.DecodeString(strings.TrimPrefix(v, "sha256="))
		if err != nil || !strings.HasPrefix(v, "sha256=") || !hmac.Equal(got, want) {
			return s.sender, fmt.Errorf("bad %s signature", s.header)
		}
		return s.sender, nil
	}
	if v := h.Get("X-Gitlab-Token"); v != "" {
		if subtle.ConstantTimeCompare([]byte(v), w.secret) != 1 {
			return "gitlab", errors.New("bad X-Gitlab-Token")
		}
		return "gitlab", nil
	}
	return "", errors.New("unsigned: X-Hub-Signature-256, X-Gitlab-Token or X-Fsgit-Signature is required")
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 1<<20))
	if err != nil {
		w.a.metrics.webhooks.WithLabelValues("bad").Inc()
		http.Error(rw, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	sender, err := w.verify(r.Header, body)
	if err != nil {
		w.a.metrics.webhooks.WithLabelValues("refused").Inc()
		w.a.logRepeated(slog.LevelWarn, "webhook", err.Error(), "webhook refused", "sender", sender, "remote", r.RemoteAddr, "err", err)
		http.Error(rw, err.Error(), http.StatusUnauthorized)
		return
	}
	if ev := r.Header.Get("X-GitHub-Event"); ev == "ping" {
		w.a.metrics.webhooks.WithLabelValues("ping").Inc()
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	if !w.limit.Allow() {
		// A poll was triggered a moment ago: it, or the next one, sees
		// this push too.
		w.a.metrics.webhooks.WithLabelValues("limited").Inc()
		rw.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(rw, "poll already triggered\n")
		return
	}
	w.a.metrics.webhooks.WithLabelValues("poll").Inc()
	w.a.log.Info("webhook: polling now", "sender", sender)
	select {
	case w.a.pollPoke <- struct{}{}:
	default:
	}
	rw.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(rw, "polling\n")
}
