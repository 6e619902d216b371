package reconciler

import (
	"errors"
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
