//go:build !lean

package main

import (
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		u    reconciler.ProgressUpdate
		want string
	}{
		{reconciler.ProgressUpdate{ID: "artifact:/opt/a.jar", Step: "download", Done: 1536, Total: 3072, Unit: reconciler.UnitBytes},
			"artifact:/opt/a.jar: download: 1.5 KiB / 3.0 KiB (50%)"},
		{reconciler.ProgressUpdate{ID: "package:tree", Step: "apt-get install tree", Done: 42, Total: 100, Unit: reconciler.UnitPercent, Message: "Unpacking tree"},
			"package:tree: apt-get install tree: 42% Unpacking tree"},
		{reconciler.ProgressUpdate{ID: "mariadb.migration:fs", Step: "migrations of fs", Done: 1, Total: 3, Unit: reconciler.UnitSteps, Message: "migration 2 (users)", Finished: true, Elapsed: 2500 * time.Millisecond},
			"mariadb.migration:fs: migrations of fs: 1/3 migration 2 (users) (2.5s)"},
	} {
		if got := progressLine(tc.u); got != tc.want {
			t.Errorf("progressLine = %q, want %q", got, tc.want)
		}
	}
}
