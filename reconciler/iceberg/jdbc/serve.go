package jdbc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// Serve handles one kind request of the fsgit-iceberg helper: it plans
// (plan, plan-delete) or plans again and applies (apply, apply-delete) the
// request's resource with this package's kinds, in a run of its own, and
// returns the plan and the error for the wire. The secrets it uses are the
// request's.
func Serve(ctx context.Context, req *iceberg.Request, log *slog.Logger) *iceberg.Response {
	plan, err := serve(ctx, req, log)
	return &iceberg.Response{Plan: iceberg.NewPlanResult(plan), Error: iceberg.NewErrorResult(err)}
}

func serve(ctx context.Context, req *iceberg.Request, log *slog.Logger) (*reconciler.Plan, error) {
	r := req.Resource
	if r == nil {
		return nil, fmt.Errorf("%s: the request names no resource", req.Op)
	}
	var k interface {
		reconciler.Kind
		reconciler.Pruner
		Close() error
	}
	switch r.Kind() {
	case "iceberg.namespace":
		k = NewNamespace()
	case "iceberg.table":
		k = NewTable()
	default:
		return nil, fmt.Errorf("%s %s: kind %q is not an iceberg kind", req.Op, r.ID, r.Kind())
	}
	defer k.Close()
	if err := k.Validate(r); err != nil {
		return nil, err
	}
	env := &reconciler.Env{Root: req.Root, Noop: req.Noop, Secrets: iceberg.SecretMap(req.Secrets), Log: log, Cache: reconciler.NewCache()}
	defer env.Cache.Close()
	var plan *reconciler.Plan
	var err error
	switch req.Op {
	case iceberg.OpPlan, iceberg.OpApply:
		plan, err = k.Plan(ctx, env, r)
	case iceberg.OpPlanDelete, iceberg.OpApplyDelete:
		plan, err = k.PlanDelete(ctx, env, r)
	default:
		return nil, fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		return nil, err
	}
	if (req.Op == iceberg.OpApply || req.Op == iceberg.OpApplyDelete) && plan.HasChanges() && plan.Apply != nil {
		if req.Noop {
			return plan, fmt.Errorf("%s %s: apply asked in noop", req.Op, r.ID)
		}
		if err := plan.Apply(ctx); err != nil {
			return plan, err
		}
	}
	return plan, nil
}
