// Command t2v-standin is a STAND-IN for the transformers-inference container
// (semitechnologies/transformers-inference) that Weaviate's
// text2vec-transformers module calls. The real container runs a sentence
// transformer whose weights cannot be fetched on this machine; this program
// speaks the same HTTP contract with a deterministic hashing embedder, so
// that Weaviate, the containers fsgit manages and a nearText query can be
// exercised end to end. Its vectors carry lexical similarity only (shared
// words and word pieces), not meaning. Production uses the real image.
//
// The contract:
//
//	GET  /.well-known/live    204
//	GET  /.well-known/ready   204
//	GET  /meta                {"model": {...}} describing the embedder
//	POST /vectors             {"text": "...", "config": {...}}
//	                          -> {"text": "...", "vector": [...], "dims": N}
//	POST /vectors/            same
//
// With -probe URL it GETs the URL and exits 0 on a 2xx answer: images
// built FROM scratch have no shell or curl for a health check.
//
// Flags: -addr (default ":8080", or $T2V_ADDR) and -dims (default 384, the
// size of all-MiniLM-L6-v2's vectors).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set by scripts/build-images.sh with -ldflags -X.
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "t2v-standin:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("t2v-standin", flag.ContinueOnError)
	defAddr := ":8080"
	if a := os.Getenv("T2V_ADDR"); a != "" {
		defAddr = a
	}
	addr := fs.String("addr", defAddr, "listen address")
	dims := fs.Int("dims", 384, "vector dimensions")
	probe := fs.String("probe", "", "GET this URL, exit 0 on a 2xx answer and 1 otherwise (a health check for images without a shell)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *probe != "" {
		return probeURL(*probe)
	}
	if *dims < 8 || *dims > 4096 {
		return fmt.Errorf("dims %d out of range 8..4096", *dims)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{
		Addr:              *addr,
		Handler:           newHandler(Embedder{Dims: *dims}, version, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("t2v stand-in listening (deterministic hashing embedder, not a model)", "addr", *addr, "dims", *dims, "version", version)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// probeURL GETs url and fails unless the answer is 2xx.
func probeURL(url string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("probing %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("probing %s: status %d", url, res.StatusCode)
	}
	return nil
}
