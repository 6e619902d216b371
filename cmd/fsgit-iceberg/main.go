// Command fsgit-iceberg is fsgit's helper for Apache Iceberg: the only
// binary that links iceberg-go (its SQL catalog, arrow, the S3 FileIO).
// fsgit runs it as a subprocess for the iceberg.namespace and iceberg.table
// kinds and for the offline step of fsgit verify, so that fsgit itself
// starts without iceberg-go's init cost.
//
// It reads one JSON request (reconciler/iceberg.Request) on stdin, does
// it, writes one JSON response (reconciler/iceberg.Response) on stdout and
// exits 0; a failed op is a response with an error, still exit 0. It logs
// on stderr (warnings only, unless the request asks for debug). Secrets
// come in the request only; it takes no arguments and reads no secret from
// its environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fsgit/fsgit/internal/verify/offline"
	"github.com/fsgit/fsgit/reconciler/iceberg"
	"github.com/fsgit/fsgit/reconciler/iceberg/jdbc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: fsgit-iceberg < request.json (run by fsgit; takes no arguments)")
		return 2
	}
	var req iceberg.Request
	dec := json.NewDecoder(stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintf(stderr, "fsgit-iceberg: read the request: %v\n", err)
		return 1
	}
	level := slog.LevelWarn
	if req.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	resp := handle(ctx, &req, log)
	if err := json.NewEncoder(stdout).Encode(resp); err != nil {
		fmt.Fprintf(stderr, "fsgit-iceberg: write the response: %v\n", err)
		return 1
	}
	return 0
}

// handle does one request.
func handle(ctx context.Context, req *iceberg.Request, log *slog.Logger) *iceberg.Response {
	switch req.Op {
	case iceberg.OpPlan, iceberg.OpApply, iceberg.OpPlanDelete, iceberg.OpApplyDelete:
		return jdbc.Serve(ctx, req, log)
	case iceberg.OpVerifyOffline:
		lines, err := verifyOffline(ctx, req)
		return &iceberg.Response{Lines: lines, Error: iceberg.NewErrorResult(err)}
	}
	return &iceberg.Response{Error: iceberg.NewErrorResult(fmt.Errorf("unknown op %q", req.Op))}
}

func verifyOffline(ctx context.Context, req *iceberg.Request) ([]string, error) {
	v := req.Verify
	if v == nil {
		return nil, errors.New("verify-offline: the request has no verify section")
	}
	pw, err := iceberg.SecretMap(req.Secrets).Resolve(ctx, v.Table.Catalog.DB.Password)
	if err != nil {
		return nil, fmt.Errorf("resolve the catalog password: %w", err)
	}
	return offline.Run(ctx, v.Table, pw, req.Root, offline.Feature{Entity: v.Entity, Name: v.Feature, Value: v.Value, Time: v.Time})
}
