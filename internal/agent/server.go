package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// API paths served on the local socket.
const (
	// StatusPath returns the node's status.Node as JSON.
	StatusPath = "/v1/status"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// server is the agent's local API: a unix socket (status and metrics),
// and optionally a TCP listener for metrics alone.
type server struct {
	log  *slog.Logger
	sock *http.Server
	tcp  *http.Server
	path string
}

// listenUnix makes the socket's directory, removes a stale socket (the
// state lock is already held, so no other agent is serving it) and listens.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("make socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Root and the socket's group may ask; the status holds no secret,
	// but it is nobody else's business.
	if err := os.Chmod(path, 0o660); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, nil
}

func startServer(log *slog.Logger, sockPath, metricsAddr string, status func() any, api map[string]http.HandlerFunc, m *metrics) (*server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status())
	})
	for pattern, h := range api {
		mux.HandleFunc(pattern, h)
	}
	metricsHandler := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	mux.Handle("GET "+MetricsPath, metricsHandler)

	ln, err := listenUnix(sockPath)
	if err != nil {
		return nil, err
	}
	s := &server{log: log, path: sockPath, sock: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ConnContext: withPeer}}
	go s.serve(s.sock, ln)
	if metricsAddr != "" {
		tl, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			_ = s.close(context.Background())
			return nil, fmt.Errorf("listen for metrics on %s: %w", metricsAddr, err)
		}
		tmux := http.NewServeMux()
		tmux.Handle("GET "+MetricsPath, metricsHandler)
		s.tcp = &http.Server{Handler: tmux, ReadHeaderTimeout: 5 * time.Second}
		go s.serve(s.tcp, tl)
	}
	return s, nil
}

func (s *server) serve(h *http.Server, ln net.Listener) {
	if err := h.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("local API", "err", err)
	}
}

func (s *server) close(ctx context.Context) error {
	var errs []error
	errs = append(errs, s.sock.Shutdown(ctx))
	if s.tcp != nil {
		errs = append(errs, s.tcp.Shutdown(ctx))
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ErrBadAnswer is wrapped by the errors of [Client.Get] when the agent
// answered, but not with what was asked: an error status, or a body that
// cannot be read. Any other error means no agent answered.
var ErrBadAnswer = errors.New("unreadable answer")

// AnswerError is the agent's answer with an error status: its message
// (the body it sent) is the error's text, so that a refusal ("a hold may
// last 2h at most") reads as the agent wrote it. It matches
// [ErrBadAnswer] with errors.Is.
type AnswerError struct {
	// Status is the HTTP status line; Message the agent's text, if any.
	Status  string
	Message string
}

// Error returns the agent's message, or the status when it sent none.
func (e *AnswerError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return "the agent answered " + e.Status
}

// Is reports whether target is [ErrBadAnswer].
func (e *AnswerError) Is(target error) bool { return target == ErrBadAnswer }

// refused reads what the agent said with an error status.
func refused(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &AnswerError{Status: resp.Status, Message: string(bytes.TrimSpace(msg))}
}

// Client asks a running agent over its socket.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the agent listening on sockPath.
func NewClient(sockPath string) *Client {
	return &Client{http: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sockPath)
		}},
	}}
}

// Get fetches path (StatusPath, MetricsPath) and decodes JSON into v, or
// returns the raw body when v is nil.
func (c *Client) Get(ctx context.Context, path string, v any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fsgit"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the agent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, refused(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: read it: %w", ErrBadAnswer, err)
	}
	if v == nil {
		return b, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrBadAnswer, path, err)
	}
	return nil, nil
}

// Run asks the agent to poll and converge now (or, with req.Noop, to
// observe), and calls onEvent with each event of the answer as it comes.
// It returns the last event: the report or the agent's error. An error
// wrapping [ErrBadAnswer] means an agent answered but not as asked; any
// other error before the first event means no agent answered.
func (c *Client) Run(ctx context.Context, req RunRequest, onEvent func(RunEvent)) (*RunEvent, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://fsgit"+RunPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	// A run takes as long as it takes: no client timeout, ctx bounds it.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("ask the agent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, refused(resp)
	}
	dec := json.NewDecoder(resp.Body)
	var last *RunEvent
	for {
		var ev RunEvent
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return last, fmt.Errorf("%w: read the run's events: %w", ErrBadAnswer, err)
		}
		if onEvent != nil {
			onEvent(ev)
		}
		last = &ev
	}
	if last == nil || (last.Report == nil && last.Error == "") {
		return last, fmt.Errorf("%w: the agent ended the answer before the run ended", ErrBadAnswer)
	}
	return last, nil
}

// Post sends req as JSON to path (HoldPath, ReleasePath) and decodes the
// answer into v. An error wrapping [ErrBadAnswer] carries the agent's
// refusal; any other error means no agent answered.
func (c *Client) Post(ctx context.Context, path string, req, v any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://fsgit"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("ask the agent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return refused(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: read it: %w", ErrBadAnswer, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrBadAnswer, path, err)
	}
	return nil
}

// peerKey keys the uid of the process at the other end of the socket in a
// request's context.
type peerKey struct{}

// withPeer records the peer's uid (SO_PEERCRED) of a unix connection.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, cred.Uid)
}

// operator is who asks, for the record: the name the client gives, and
// the account the kernel says the client runs as when they differ ("alice
// (as root)": sudo).
func operator(r *http.Request, claimed string) string {
	uid, ok := r.Context().Value(peerKey{}).(uint32)
	if !ok {
		return claimed
	}
	name := fmt.Sprintf("uid %d", uid)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		name = u.Username
	}
	switch claimed {
	case "", name:
		return name
	}
	return claimed + " (as " + name + ")"
}
