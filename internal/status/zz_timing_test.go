package status

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/gittest"
)

func TestZZTiming(t *testing.T) {
	srv := gittest.NewServer(t)
	srv.NewRepo("s.git")
	publishFleet(t, srv.URL("s.git"), 50, 1)
	for i := 0; i < 5; i++ {
		p := &Publisher{URL: srv.URL("s.git")}
		st := time.Now()
		if err := p.Publish(context.Background(), &Node{Node: "node07", AppliedRevision: fmt.Sprint(i + 10)}); err != nil {
			t.Fatal(err)
		}
		t.Logf("one publish: %v", time.Since(st))
		st = time.Now()
		_, _, err := fetchBranch(context.Background(), srv.URL("s.git"), DefaultBranch, nil)
		t.Logf("fetch alone: %v %v", time.Since(st), err)
	}
}
