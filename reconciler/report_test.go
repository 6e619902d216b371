package reconciler

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleReport has one result of every kind a report shows.
func sampleReport(noop bool) *Report {
	rep := &Report{
		Site: "example", Node: "db1", Role: "feature_store_online",
		Revision: "9bd8731489a5729d0000000000000000deadbeef",
		Noop:     noop, Started: time.Unix(0, 0), Duration: jsondoc.Seconds(1234 * time.Millisecond),
	}
	drift := Drifted
	created, changed := Created, Changed
	if noop {
		created, changed = drift, drift
	}
	rep.Results = []Result{
		{ID: "package:mariadb-server", Outcome: Skipped, Reason: "packages cannot be installed under --root /tmp/s: apt and dpkg act on the host"},
		{ID: "file:/etc/my.cnf.d/server.cnf", Outcome: created, Action: ActionCreate,
			Changes: []Change{{Field: "content", After: "sha256:4f2a9c", Class: Safe}, {Field: "mode", After: "0644", Class: Safe}}},
		{ID: "file:/etc/chrony/chrony.conf", Outcome: changed, Action: ActionUpdate, Corrective: true,
			Changes: []Change{{Field: "content", Before: "sha256:0be1", After: "sha256:77aa", Class: Safe}}},
		{ID: "service:mariadb", Outcome: Unchanged, Refreshed: true, RefreshedBy: []ID{"file:/etc/my.cnf.d/server.cnf"}},
		{ID: "mariadb.user:fs_user@localhost", Outcome: Failed, Error: "resolve secret mariadb/fs_user: secret not found"},
		{ID: "mariadb.grant:fs_user@localhost/feature_store_online", Outcome: Skipped, Reason: "dependency mariadb.user:fs_user@localhost failed"},
		{ID: "docker.volume:weaviate-data", Outcome: PendingDestroy, Action: ActionUpdate,
			Changes: []Change{{Field: "driver", Before: "local", After: "nfs", Class: Destructive}},
			Reason:  "destructive change held (driver): set allowDestroy: true on this resource to let it run"},
		{ID: "file:/etc/motd", Outcome: Drifted, Changes: []Change{{Field: "content", Before: "sha256:1", After: "sha256:2"}}, Reason: reasonDetect},
		{ID: "file:/etc/unchanged", Outcome: Unchanged},
		{ID: "file:/etc/old.cnf", Outcome: Deleted, Action: ActionDelete, Pruned: true, Reason: "left the catalog",
			Changes: []Change{{Field: "ensure", Before: "present", After: "absent"}}},
	}
	if noop {
		rep.Results[len(rep.Results)-1].Outcome = Drifted
		rep.Results[len(rep.Results)-1].Reason = "left the catalog; would be removed"
	}
	return rep
}

func TestReport_WriteText(t *testing.T) {
	cases := []struct {
		name string
		rep  *Report
		opts TextOptions
	}{
		{"apply", sampleReport(false), TextOptions{}},
		{"noop", sampleReport(true), TextOptions{}},
		{"quiet", &Report{Node: "db1", Results: []Result{{ID: "file:/a", Outcome: Unchanged}}}, TextOptions{}},
		{"verbose", &Report{Node: "db1", Results: []Result{{ID: "file:/a", Outcome: Unchanged, Observed: map[string]string{"mode": "0644", "content": "sha256:1"}}}}, TextOptions{Verbose: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := c.rep.WriteText(&buf, c.opts); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			golden := filepath.Join("testdata", "report_"+c.name+".txt")
			if *update {
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(want) {
				t.Fatalf("report differs from %s:\n--- got\n%s--- want\n%s", golden, b, want)
			}
		})
	}
}

func TestReport_Summary(t *testing.T) {
	s := sampleReport(false).Summary()
	if s.Total != 10 || s.Outcomes[Skipped] != 2 || s.Outcomes[Created] != 1 || s.Refreshed != 1 || s.Corrective != 1 || s.Changes != 5 {
		t.Fatalf("summary %+v", s)
	}
	if _, ok := s.Outcomes[Failed]; !ok {
		t.Fatal("summary leaves out an outcome")
	}
	if got := sampleReport(false).ExitCode(); got != 6 {
		t.Fatalf("exit code %d, want 6", got)
	}
}
