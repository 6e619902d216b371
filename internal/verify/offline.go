package verify

import (
	"context"
	"fmt"

	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// runOffline appends the history row through the JDBC catalog and reads it
// back, in the fsgit-iceberg helper (package verify/offline does the work
// there): fsgit does not link iceberg-go. The catalog password goes to the
// helper over its stdin only.
func runOffline(ctx context.Context, off Offline, opts Options) ([]string, error) {
	spec := off.Table
	secrets, err := iceberg.CatalogSecrets(ctx, opts.Secrets, spec.Catalog)
	if err != nil {
		return nil, err
	}
	f := opts.Feature
	resp, err := iceberg.Call(ctx, &iceberg.Request{
		Op:      iceberg.OpVerifyOffline,
		Root:    opts.Root,
		Secrets: secrets,
		Verify:  &iceberg.VerifyRequest{Table: spec, Entity: f.Entity, Feature: f.Name, Value: f.Value, Time: f.Time},
	}, opts.Log)
	if err != nil {
		return nil, fmt.Errorf("run the offline step: %w", err)
	}
	return resp.Lines, resp.Error.Err()
}
