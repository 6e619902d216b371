package reconciler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestBuildGraph(t *testing.T) {
	cases := []struct {
		name    string
		res     []Resource
		order   string
		wantErr string
	}{
		{
			name: "require and notify order",
			res: []Resource{
				{ID: "service:mariadb", Require: []ID{"package:mariadb-server"}},
				{ID: "file:/etc/my.cnf", Notify: []ID{"service:mariadb"}, Require: []ID{"package:mariadb-server"}},
				{ID: "package:mariadb-server"},
			},
			order: "package:mariadb-server file:/etc/my.cnf service:mariadb",
		},
		{
			name:    "dangling require",
			res:     []Resource{{ID: "file:/a", Require: []ID{"package:nope"}}},
			wantErr: "resource file:/a: require names package:nope, which is not in the catalog",
		},
		{
			name:    "duplicate",
			res:     []Resource{{ID: "file:/a"}, {ID: "file:/a"}},
			wantErr: "resource file:/a is declared more than once",
		},
		{
			name: "cycle",
			res: []Resource{
				{ID: "a:1", Require: []ID{"c:3"}},
				{ID: "b:2", Require: []ID{"a:1"}},
				{ID: "c:3", Require: []ID{"b:2"}},
				{ID: "d:4"},
			},
			wantErr: "dependency cycle: a:1 -> b:2 -> c:3 -> a:1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, errs := BuildGraph(&Catalog{Resources: tc.res})
			if tc.wantErr != "" {
				if len(errs) == 0 {
					t.Fatalf("no error, want %q", tc.wantErr)
				}
				var ee *EdgeError
				if !errors.As(errs[0], &ee) || errs[0].Error() != tc.wantErr {
					t.Fatalf("error %q, want %q", errs[0], tc.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			var got []string
			for _, id := range g.Order {
				got = append(got, string(id))
			}
			if s := strings.Join(got, " "); s != tc.order {
				t.Fatalf("order %q, want %q", s, tc.order)
			}
		})
	}
}

func TestEnvPath(t *testing.T) {
	e := &Env{Root: "/sandbox"}
	if p, err := e.Path("/etc/x"); err != nil || p != "/sandbox/etc/x" {
		t.Fatalf("got %q %v", p, err)
	}
	for _, bad := range []string{"etc/x", "/etc/../../x", "/a/./b"} {
		if _, err := e.Path(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBuildGraph_RepeatedEdges: a pair joined twice (require listed twice,
// require and notify) is one edge each way, so that a resource waits for
// each dependency once.
func TestBuildGraph_RepeatedEdges(t *testing.T) {
	g, errs := BuildGraph(&Catalog{Resources: []Resource{
		{ID: "a:1", Notify: []ID{"c:3", "c:3"}},
		{ID: "b:2"},
		{ID: "c:3", Require: []ID{"a:1", "b:2", "a:1"}},
	}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := fmt.Sprint(g.Before["c:3"], g.After["a:1"], g.NotifiedBy["c:3"]); got != "[a:1 b:2] [c:3] [a:1]" {
		t.Fatalf("before, after, notified by = %s", got)
	}
}

// TestBuildGraph_ManyReady: among resources ready at once, the smallest ID
// always runs first (here: each user frees its grants, which sort before
// the next users).
func TestBuildGraph_ManyReady(t *testing.T) {
	var res []Resource
	for i := range 50 {
		u := ID(fmt.Sprintf("u:%02d", i))
		res = append(res, Resource{ID: u})
		for j := range 3 {
			res = append(res, Resource{ID: ID(fmt.Sprintf("g:%02d/%d", i, j)), Require: []ID{u}})
		}
	}
	g, errs := BuildGraph(&Catalog{Resources: res})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []ID{"u:00", "g:00/0", "g:00/1", "g:00/2", "u:01", "g:01/0"}
	if got := g.Order[:len(want)]; !slices.Equal(got, want) {
		t.Fatalf("order starts %v, want %v", got, want)
	}
	if len(g.Order) != len(res) {
		t.Fatalf("%d in order, want %d", len(g.Order), len(res))
	}
}

// TestPosHeap: positions pushed in any order, some while others are
// popped, come out least first.
func TestPosHeap(t *testing.T) {
	h := &posHeap{}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(200)
	var got []int
	seen := map[int]bool{}
	for i, p := range perm {
		h.push(p)
		seen[p] = true
		if i%3 == 2 {
			least := h.pop()
			for q := range seen {
				if q < least {
					t.Fatalf("pop gave %d while %d was in", least, q)
				}
			}
			delete(seen, least)
			got = append(got, least)
		}
	}
	var rest []int
	for h.Len() > 0 {
		rest = append(rest, h.pop())
	}
	if !slices.IsSorted(rest) || len(got)+len(rest) != len(perm) {
		t.Fatalf("popped %d then %v", len(got), rest)
	}
}
