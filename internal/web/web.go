// Package web is `fsgit serve`: a read-only view of the fleet in a browser,
// read from the status repository that every agent publishes its document
// to, in either layout (the status branch, or a ref per node) or both, as
// status.ReadFleet reads it.
//
// A [Server] polls the repository with a status.Reader, as an agent polls
// its source: the remote's refs first (one round trip), a shallow fetch
// only when one of the status refs moved. It reads every node's document
// and each node's history from the commits fetched (the node's ref, or the
// branch for a node without one), and serves pages rendered on the server
// with html/template: the fleet (/), a node (/node/NAME), a revision
// (/revision/COMMIT), /healthz and /metrics. Every page is also JSON
// (?format=json), following internal/jsondoc's conventions.
//
// The pages hold no script and load nothing from elsewhere (the style sheet
// is embedded, the timelines are inline SVG); a Content-Security-Policy
// forbids scripts altogether, on top of html/template's escaping of
// everything the documents (written by nodes) say. Only GET and HEAD are
// served. Access can be limited by HTTP basic auth or a bearer token.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/fsgit/fsgit/internal/gitsource"
	"github.com/fsgit/fsgit/internal/status"
)

//go:embed templates/*.html templates/style.css
var assets embed.FS

// Access says who may read the pages. With neither set, anyone who can
// reach the address can.
type Access struct {
	// User and Password are HTTP basic auth credentials.
	User, Password string
	// Token is a bearer token ("Authorization: Bearer TOKEN").
	Token string
}

// open reports whether Access lets anyone in.
func (a Access) open() bool { return a.Token == "" && a.Password == "" }

// Options configure a Server.
type Options struct {
	// URL is the status repository, Branch its status branch
	// (status.DefaultBranch if empty; the nodes' refs are
	// refs/<Branch>/<node>), Auth how to reach it.
	URL    string
	Branch string
	Auth   transport.AuthMethod
	// CacheDir holds the bare cache of the status refs.
	CacheDir string
	// Interval is the time between polls (30 s if zero).
	Interval time.Duration
	// Depth is how many commits of the branch, and of each node's ref,
	// are fetched and read for the nodes' histories (200 if zero).
	Depth int
	// StaleAfter marks a node stale when its document is older (1 h if
	// zero; agents publish when their outcome changes, so a quiet,
	// converged node also turns stale).
	StaleAfter time.Duration
	// MaxTipLag flags a node whose source tip is older than the newest
	// tip of the nodes on the same site and branch by more than this
	// (zero: by more than the node's own maxTipAge).
	MaxTipLag time.Duration
	// Access limits who may read the pages.
	Access Access
	// Redact lists values never to show: the repository's password, say,
	// should a git error quote it.
	Redact []string
	// Log receives a line per poll that changes something, and errors.
	Log *slog.Logger
}

// Server serves the fleet's pages. It is safe for concurrent use.
type Server struct {
	opts    Options
	reader  *status.Reader
	tmpl    *template.Template
	metrics *metrics
	log     *slog.Logger
	url     string // the repository's URL as shown

	mu        sync.Mutex
	snap      *Snapshot
	checked   time.Time
	pollError string
}

// New makes a server; Run polls the repository and Handler serves the
// pages.
func New(opts Options) (*Server, error) {
	if opts.URL == "" || opts.CacheDir == "" {
		return nil, errors.New("serve the fleet: the status repository's URL and a cache directory are required")
	}
	if opts.Branch == "" {
		opts.Branch = status.DefaultBranch
	}
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Depth <= 0 {
		opts.Depth = 200
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if u, err := url.Parse(opts.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			opts.Redact = append(opts.Redact, p)
		}
	}
	// The reader redacts the URL's password in its errors
	// (gitsource.RedactURL); Redact above covers what else a page shows.
	reader, err := status.NewReader(status.ReaderConfig{URL: opts.URL, Branch: opts.Branch, Auth: opts.Auth,
		History: opts.Depth, CacheDir: opts.CacheDir})
	if err != nil {
		return nil, err
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, reader: reader, tmpl: tmpl, metrics: newMetrics(), log: opts.Log}
	s.url = s.redact(gitsource.RedactURL(opts.URL))
	return s, nil
}

// Close releases the server's status cache (its open pack files). The
// server polls no more after it.
func (s *Server) Close() error { return s.reader.Close() }

// redact replaces every value of Options.Redact in s.
func (s *Server) redact(text string) string {
	for _, v := range s.opts.Redact {
		if v != "" {
			text = strings.ReplaceAll(text, v, "[redacted]")
		}
	}
	return text
}

// Run polls the repository until ctx ends: once at once, then every
// Options.Interval.
func (s *Server) Run(ctx context.Context) error {
	for {
		s.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.opts.Interval):
		}
	}
}

// Poll lists the status refs once and, when one moved, reads them again.
func (s *Server) Poll(ctx context.Context) {
	s.mu.Lock()
	known := s.snap
	s.mu.Unlock()
	start := time.Now()
	snap, err := poll(ctx, s.reader, known, start)
	s.metrics.pollSeconds.Observe(time.Since(start).Seconds())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = time.Now()
	switch {
	case err != nil:
		s.metrics.polls.WithLabelValues("error").Inc()
		msg := s.redact(err.Error())
		if msg != s.pollError {
			s.log.Warn("poll the status repository", "url", s.url, "branch", s.opts.Branch, "err", msg)
		}
		s.pollError = msg
	case snap == nil:
		// The same refs, or still no status.
		s.metrics.polls.WithLabelValues("unchanged").Inc()
		s.pollError = ""
	default:
		s.metrics.polls.WithLabelValues("changed").Inc()
		s.metrics.nodes.Set(float64(len(snap.Nodes)))
		s.log.Info("status read", "tip", snap.Tip, "nodes", len(snap.Nodes), "commits", snap.Commits,
			"duration", time.Since(start))
		s.snap, s.pollError = snap, ""
	}
}

// state returns the snapshot (nil before the first read) and the
// branch's description.
func (s *Server) state() (*Snapshot, Branch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := Branch{URL: s.url, Branch: s.opts.Branch, Checked: s.checked, PollError: s.pollError}
	if s.snap != nil {
		b.Tip, b.NodeRefs, b.Read, b.Unreadable = s.snap.Tip, s.snap.NodeRefs, s.snap.Read, s.snap.Unreadable
	}
	return s.snap, b
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.page("fleet", s.fleet))
	mux.Handle("GET /node/{name}", s.page("node", s.node))
	mux.Handle("GET /revision/{rev}", s.page("revision", s.revision))
	mux.Handle("GET /healthz", s.page("healthz", s.healthz))
	mux.Handle("GET /style.css", s.count("style", http.HandlerFunc(serveStyle)))
	mux.Handle("GET /metrics", s.count("metrics", s.metrics.handler()))
	return s.guard(mux)
}

// guard lets only reads through, by whoever Access allows, and sets the
// headers that keep a browser from running or loading anything the pages
// do not hold.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		if s.opts.Access.open() && !isLoopback(hostname(r.Host)) {
			// Open access is for loopback only: a request naming another
			// host is a web page's script reaching the view through a
			// name that resolves to 127.0.0.1 (DNS rebinding).
			s.metrics.requests.WithLabelValues("denied", "421").Inc()
			http.Error(w, "this view answers to localhost and loopback addresses only", http.StatusMisdirectedRequest)
			return
		}
		if !s.allowed(r) {
			if s.opts.Access.Password != "" {
				h.Set("WWW-Authenticate", `Basic realm="fsgit", charset="UTF-8"`)
			} else {
				h.Set("WWW-Authenticate", `Bearer realm="fsgit"`)
			}
			s.metrics.requests.WithLabelValues("denied", "401").Inc()
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowed reports whether r carries credentials Access accepts.
func (s *Server) allowed(r *http.Request) bool {
	a := s.opts.Access
	if a.open() {
		return true
	}
	eq := func(got, want string) bool {
		return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && eq(strings.TrimSpace(tok), a.Token) {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && eq(u, a.User) && eq(p, a.Password) {
		return true
	}
	return false
}

// result is what a page handler returns: a document to show as HTML with
// the template named tmpl, or as JSON; code is the HTTP status.
type result struct {
	code int
	tmpl string
	doc  any
}

// count counts and times the requests of a handler.
func (s *Server) count(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(cw, r)
		s.metrics.requests.WithLabelValues(name, fmt.Sprint(cw.code)).Inc()
		s.metrics.requestSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// page serves the document a handler makes as HTML or, with ?format=json,
// as JSON.
func (s *Server) page(name string, build func(r *http.Request) result) http.Handler {
	return s.count(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := build(r)
		if res.code == 0 {
			res.code = http.StatusOK
		}
		switch r.URL.Query().Get("format") {
		case "json":
			b, err := json.MarshalIndent(res.doc, "", "  ")
			if err != nil {
				s.log.Error("encode page", "page", name, "err", err)
				http.Error(w, "encode page", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(res.code)
			_, _ = w.Write(append(b, '\n'))
		case "", "html":
			var b strings.Builder
			if err := s.tmpl.ExecuteTemplate(&b, res.tmpl, res.doc); err != nil {
				s.log.Error("render page", "page", name, "err", err)
				http.Error(w, "render page", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(res.code)
			_, _ = w.Write([]byte(b.String()))
		default:
			http.Error(w, "format: html or json", http.StatusBadRequest)
		}
	}))
}

// notRead is the document of a page asked for before the branch was read.
type notRead struct {
	Branch Branch `json:"branch"`
	// Error says what is missing.
	Error string `json:"error"`
}

func (s *Server) fleet(r *http.Request) result {
	snap, b := s.state()
	if snap == nil {
		snap = &Snapshot{}
	}
	q := r.URL.Query()
	return result{tmpl: "fleet", doc: fleetPage(b, snap, q.Get("role"), q.Get("state"), time.Now(), s.opts.StaleAfter, s.opts.MaxTipLag)}
}

func (s *Server) node(r *http.Request) result {
	snap, b := s.state()
	name := r.PathValue("name")
	var n *status.Node
	if snap != nil {
		n = snap.node(name)
	}
	if n == nil {
		return result{code: http.StatusNotFound, tmpl: "missing", doc: notRead{Branch: b, Error: "no node " + name + " in the status repository"}}
	}
	hist := snap.History[name]
	if hist == nil {
		hist = []Point{}
	}
	row := rowOf(n, time.Now(), s.opts.StaleAfter, lagOf(tipLags(snap, s.opts.MaxTipLag), name))
	return result{tmpl: "node", doc: &NodePage{Branch: b, Row: row, Document: n, History: hist}}
}

func (s *Server) revision(r *http.Request) result {
	snap, b := s.state()
	rev := r.PathValue("rev")
	if len(rev) < 4 {
		return result{code: http.StatusBadRequest, tmpl: "missing", doc: notRead{Branch: b, Error: "a revision is at least 4 hex digits"}}
	}
	if snap == nil {
		snap = &Snapshot{}
	}
	return result{tmpl: "revision", doc: revisionPage(b, snap, rev)}
}

func (s *Server) healthz(*http.Request) result {
	snap, b := s.state()
	h := &Health{Branch: b, OK: snap != nil && b.PollError == ""}
	if snap != nil {
		h.Nodes = len(snap.Nodes)
	}
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	return result{code: code, tmpl: "healthz", doc: h}
}

func serveStyle(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("templates/style.css")
	if err != nil {
		http.Error(w, "no style", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// ErrOpenAddress is wrapped by CheckListen for an address other than
// loopback with no access control.
var ErrOpenAddress = errors.New("serving beyond loopback needs --basic-auth-file or --token-file")

// CheckListen checks that addr (host:port) is a loopback address, or that
// access asks for credentials: a fleet's view is not served to the network
// unauthenticated by accident. An empty host ("":8080) listens everywhere.
func CheckListen(addr string, access Access) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if !access.open() || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("listen address %q is not loopback: %w", addr, ErrOpenAddress)
}

// hostname is the host of a Host header, without its port.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RepoURL returns the status repository's URL as the pages show it,
// without a password.
func (s *Server) RepoURL() string { return s.url }
