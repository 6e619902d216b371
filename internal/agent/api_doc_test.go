package agent

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/internal/status"
	"github.com/fsgit/fsgit/reconciler"
)

// TestAPI_roundTrip: the status the agent serves on its socket is what
// fsgit status reads, every field of it, over the real socket and client.
func TestAPI_roundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fsgit.sock")
	var current atomic.Pointer[status.Node]
	srv, err := startServer(slog.New(slog.DiscardHandler), sock, "", func() any { return current.Load() }, nil, newMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.close(context.Background()) })
	gens := jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}
	c := NewClient(sock)
	for seed := range uint64(50) {
		var served status.Node
		jsondoctest.Fill(t, &served, rand.New(rand.NewPCG(seed, 1)), gens)
		current.Store(&served)
		var got status.Node
		if _, err := c.Get(context.Background(), StatusPath, &got); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !reflect.DeepEqual(got, served) {
			t.Fatalf("seed %d: served %+v\nread %+v", seed, served, got)
		}
	}
}
