package mariadb

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
)

// benchCatalog converges users accounts with 4 grants each (on 4
// databases, one of them ALL PRIVILEGES) and returns the harness and the
// catalog, with the pools open.
func benchCatalog(b testing.TB, users int) (*harness, []reconciler.Resource) {
	b.Helper()
	h := newHarness(b, srv)
	cat := usersCatalog(h, "bench", users)
	rep := h.run(cat...)
	if n := rep.Count(reconciler.Created) + rep.Count(reconciler.Unchanged); n != len(cat) {
		b.Fatalf("first run: %d of %d converged:\n%s", n, len(cat), outcomes(rep))
	}
	h.run(cat...) // warm: pools open
	return h, cat
}

// usersCatalog returns users accounts named prefix<users>_u<i>, each with
// 4 grants (on 4 databases, one of them ALL PRIVILEGES) that require it,
// and puts their passwords in h's secrets.
func usersCatalog(h *harness, prefix string, users int) []reconciler.Resource {
	var cat []reconciler.Resource
	for i := range users {
		user := fmt.Sprintf("%s%d_u%d", prefix, users, i)
		h.secrets["mariadb/"+user] = "pw-" + user
		uid := "mariadb.user:" + user + "@%"
		cat = append(cat, h.res(uid, map[string]any{"user": user, "host": "%", "password": map[string]any{"secret": "mariadb/" + user}}))
		for g, privs := range [][]string{{"SELECT"}, {"SELECT", "INSERT", "UPDATE", "DELETE"}, {"ALL PRIVILEGES"}, {"SELECT", "SHOW VIEW"}} {
			db := fmt.Sprintf("bench_db%d", g)
			cat = append(cat, h.res("mariadb.grant:"+user+"@%/"+db+".*",
				map[string]any{"user": user, "host": "%", "database": db, "privileges": privs}, requires(uid)))
		}
	}
	return cat
}

// BenchmarkFirstRun_Users4Grants times a first run through the real
// engine, against the real server: users accounts with 4 grants each
// (usersCatalog), none of which exists, all created, each verified. It
// reports what the run sends (queries/op, the server's Questions
// counter) and the CPU time it costs this process (cpu-ms/op) and the
// server (server-cpu-ms/op). Between runs, untimed, the accounts and
// their declared grants are dropped and the node's memory forgotten.
//
// Run: go test ./reconciler/mariadb -run '^$' -bench FirstRun -benchtime 3x
func BenchmarkFirstRun_Users4Grants(b *testing.B) {
	for _, users := range []int{125, 250, 500} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			h := newHarness(b, srv)
			cat := usersCatalog(h, "first", users)
			root := srv.RootDB(b)
			drop := func() {
				var accts []string
				for i := range users {
					accts = append(accts, account(fmt.Sprintf("first%d_u%d", users, i), "%"))
				}
				mustExec(b, root, "DROP USER IF EXISTS "+strings.Join(accts, ", "))
				mustExec(b, root, "CREATE DATABASE IF NOT EXISTS "+defaultBookkeeping)
				mustExec(b, root, historyDDL(defaultBookkeeping))
				mustExec(b, root, "DELETE FROM "+defaultBookkeeping+"."+historyTable+" WHERE `user` LIKE ?", fmt.Sprintf("first%d\\_u%%", users))
				h.prior = nil
			}
			b.Cleanup(drop)
			drop()
			var queries, statusCost int64
			var cpu, srvCPU time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				drop()
				s0 := mariadbtest.Status(b, root)
				s1 := mariadbtest.Status(b, root)
				cpu0, srv0 := cpuTimes(b)
				b.StartTimer()
				rep := h.run(cat...)
				b.StopTimer()
				cpu1, srv1 := cpuTimes(b)
				s2 := mariadbtest.Status(b, root)
				if n := rep.Count(reconciler.Created); n != len(cat) {
					b.Fatalf("%d of %d created:\n%s", n, len(cat), outcomes(rep))
				}
				for _, r := range rep.Results {
					if r.Warning != "" {
						b.Fatalf("%s: %s", r.ID, r.Warning)
					}
				}
				statusCost = mariadbtest.Delta(s0, s1, "Questions")
				queries += mariadbtest.Delta(s1, s2, "Questions") - statusCost
				cpu += cpu1 - cpu0
				srvCPU += srv1 - srv0
			}
			b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
			b.ReportMetric(float64(len(cat)), "resources")
			b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(srvCPU.Microseconds())/1e3/float64(b.N), "server-cpu-ms/op")
		})
	}
}

// BenchmarkNoopRun_50Users4Grants times a quiet run through the real
// engine, against the real server, over 50 users with 4 grants each (and
// 1,000 and 10, to show what grows), and reports what it sends: queries/run (the
// server's Questions counter, all connections) and connections/run (new
// connections). Neither may grow with the number of users, and no
// statement that writes may run. It also reports the CPU time a run costs
// this process (cpu-ms/run: fsgit, the harness and the driver) and the
// server (server-cpu-ms/run), which a loaded machine inflates far less
// than ns/op.
//
// Each size runs twice: apply (prepare the catalog and run it, as fsgit
// apply --once does) and run (the catalog prepared once, as the agent
// keeps it between polls of one commit).
//
// Run: go test ./reconciler/mariadb -run '^$' -bench NoopRun -benchtime 100x
//
// Profile the timed runs alone: add -cpuprofile cpu.out, then
// go tool pprof -tagfocus phase=quiet -top cpu.out.
func BenchmarkNoopRun_50Users4Grants(b *testing.B) {
	for _, users := range []int{1000, 50, 10} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			h, cat := benchCatalog(b, users)
			b.Run("apply", func(b *testing.B) {
				benchQuiet(b, len(cat), func() *reconciler.Report { return h.run(cat...) })
			})
			b.Run("run", func(b *testing.B) {
				c := &reconciler.Catalog{Node: "test", Resources: append([]reconciler.Resource(nil), cat...)}
				c.Sort()
				p, err := h.engine.Prepare(c)
				if err != nil {
					b.Fatal(err)
				}
				benchQuiet(b, len(cat), func() *reconciler.Report {
					rep, err := h.engine.Run(b.Context(), p, reconciler.RunOptions{Secrets: h.secrets, Prior: h.prior, Root: h.root})
					if err != nil {
						b.Fatal(err)
					}
					h.prior = rep.Next
					return rep
				})
			})
		})
	}
}

// benchQuiet times run, a quiet run over n resources, b.N times, checks
// that every resource was unchanged and nothing was written, and reports
// queries, connections and CPU per run.
func benchQuiet(b *testing.B, n int, run func() *reconciler.Report) {
	root := srv.RootDB(b)
	s0 := mariadbtest.Status(b, root)
	s1 := mariadbtest.Status(b, root)
	var rep *reconciler.Report
	cpu0, srv0 := cpuTimes(b)
	b.ResetTimer()
	// The timed runs carry a profiler label (inherited by the goroutines
	// they start), so that a profile of the benchmark can leave out the
	// setup: go tool pprof -tagfocus phase=quiet.
	pprof.Do(b.Context(), pprof.Labels("phase", "quiet"), func(context.Context) {
		for range b.N {
			rep = run()
		}
	})
	b.StopTimer()
	cpu1, srv1 := cpuTimes(b)
	s2 := mariadbtest.Status(b, root)
	if u := rep.Count(reconciler.Unchanged); u != n {
		b.Fatalf("%d of %d unchanged:\n%s", u, n, outcomes(rep))
	}
	if w := mariadbtest.WriteCounters(s1, s2); len(w) != 0 {
		b.Fatalf("quiet runs wrote: %v", w)
	}
	statusCost := mariadbtest.Delta(s0, s1, "Questions")
	b.ReportMetric(float64(mariadbtest.Delta(s1, s2, "Questions")-statusCost)/float64(b.N), "queries/run")
	b.ReportMetric(float64(mariadbtest.Delta(s1, s2, "Connections"))/float64(b.N), "connections/run")
	b.ReportMetric(float64(n), "resources")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/run")
	b.ReportMetric(float64((srv1-srv0).Microseconds())/1e3/float64(b.N), "server-cpu-ms/run")
}

// cpuTimes returns the CPU time this process and the package's server
// have used so far.
func cpuTimes(b *testing.B) (self, server time.Duration) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	server, err := srv.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), server
}

// BenchmarkNoopPlans_50Users4Grants times the kinds alone, without the
// engine: one Plan per resource, sequentially, with a fresh run cache.
func BenchmarkNoopPlans_50Users4Grants(b *testing.B) {
	h, cat := benchCatalog(b, 50)
	reg := reconciler.NewRegistry(h.kinds.All()...)
	b.ResetTimer()
	for range b.N {
		env := &reconciler.Env{Secrets: h.secrets, Cache: reconciler.NewCache()}
		for i := range cat {
			k, _ := reg.Lookup(cat[i].Kind())
			p, err := k.Plan(b.Context(), env, &cat[i])
			if err != nil || p.HasChanges() {
				b.Fatalf("%s: %v %+v", cat[i].ID, err, p)
			}
		}
	}
}

// TestNoopRun_QueriesConstantInUsers: a quiet run over 40 users with 4
// grants each sends as many queries as one over 4 users: observation is
// batched per run, never per resource.
func TestNoopRun_QueriesConstantInUsers(t *testing.T) {
	root := srv.RootDB(t)
	queries := map[int]int64{}
	for _, users := range []int{4, 40} {
		h, cat := benchCatalog(t, users)
		s0 := mariadbtest.Status(t, root)
		s1 := mariadbtest.Status(t, root)
		rep := h.run(cat...)
		s2 := mariadbtest.Status(t, root)
		if n := rep.Count(reconciler.Unchanged); n != len(cat) {
			t.Fatalf("%d users: %d of %d unchanged:\n%s", users, n, len(cat), outcomes(rep))
		}
		queries[users] = mariadbtest.Delta(s1, s2, "Questions") - mariadbtest.Delta(s0, s1, "Questions")
	}
	if queries[4] != queries[40] {
		t.Fatalf("queries per quiet run: %d with 4 users, %d with 40: observation grows with the catalog", queries[4], queries[40])
	}
	t.Logf("%d queries per quiet run", queries[40])
}
