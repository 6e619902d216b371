package mariadb

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/mariadbtest"
	"github.com/fsgit/fsgit/reconciler"
)

// levelsOf returns the levels of m that are a's.
func levelsOf[S any](m map[grantKey]S, a accountKey) map[grantKey]S {
	out := map[grantKey]S{}
	for k, st := range m {
		if k.User == a.User && k.Host == a.Host {
			out[k] = st
		}
	}
	return out
}

// TestNarrowRead_AsWhole: what the reads of one account find (its row of
// mysql.global_priv, its privileges at every level, its declared grants)
// is what the whole reads find for it, and nothing of another account:
// escaped and wildcard database names, a table grant, a global one, a
// grant option alone, a host given in capitals and one stored so by hand,
// a user whose name differs only in case, the same user at another host,
// an anonymous account, a role and PUBLIC.
func TestNarrowRead_AsWhole(t *testing.T) {
	root := srv.RootDB(t)
	accts := []string{"nr_u@localhost", "nr_u@nr-other", "NR_U@localhost", "nr_v@%", "@nr-anon.example"}
	cleanup := func() {
		clean(t, root, append([]string{"nr_a_b", "nr_books"}, accts...)...)
		_, _ = root.Exec("DROP ROLE IF EXISTS nr_role")
		_, _ = root.Exec("REVOKE ALL PRIVILEGES ON `nr\\_a\\_b`.* FROM PUBLIC")
		_, _ = root.Exec("DELETE FROM mysql.global_priv WHERE User = 'nr_cap'")
		_, _ = root.Exec("DELETE FROM mysql.db WHERE User = 'nr_cap'")
		_, _ = root.Exec("FLUSH PRIVILEGES")
	}
	cleanup()
	t.Cleanup(cleanup)
	mustExec(t, root, "CREATE DATABASE nr_a_b")
	mustExec(t, root, "CREATE TABLE nr_a_b.t (a INT)")
	mustExec(t, root, "CREATE USER nr_u@LocalHost IDENTIFIED BY 'pw-u' WITH MAX_QUERIES_PER_HOUR 7")
	mustExec(t, root, "CREATE USER nr_u@'nr-other'")
	mustExec(t, root, "CREATE USER NR_U@localhost")
	mustExec(t, root, "CREATE USER nr_v@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-v') OR unix_socket")
	mustExec(t, root, "CREATE USER ''@'nr-anon.example'")
	mustExec(t, root, "CREATE ROLE nr_role")
	// Stored in capitals, as only a hand-made row is: the server lower-
	// cases the host of CREATE USER and GRANT.
	mustExec(t, root, `INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('NR-Cap.Example', 'nr_cap', '{"access":0,"plugin":"mysql_native_password","authentication_string":"","max_user_connections":3}')`)
	mustExec(t, root, "INSERT INTO mysql.db (Host, Db, User, Select_priv, Insert_priv) VALUES ('NR-Cap.Example', 'nr\\_a\\_b', 'nr_cap', 'Y', 'Y')")
	mustExec(t, root, "FLUSH PRIVILEGES")
	for _, q := range []string{
		"GRANT SELECT, INSERT ON `nr\\_a\\_b`.* TO nr_u@localhost",
		"GRANT ALL PRIVILEGES ON `nr_a%`.* TO nr_u@localhost WITH GRANT OPTION",
		"GRANT SELECT ON `nr\\_a\\_b`.* TO nr_u@'nr-other'",
		"GRANT DELETE ON `nr\\_a\\_b`.* TO NR_U@localhost",
		"GRANT PROCESS ON *.* TO NR_U@localhost",
		"GRANT USAGE ON `nr\\_other`.* TO nr_v@'%' WITH GRANT OPTION",
		"GRANT SHOW VIEW, LOCK TABLES ON `nr\\_a\\_b`.* TO nr_v@'%'",
		"GRANT UPDATE ON nr_a_b.t TO nr_v@'%'",
		"GRANT PROCESS, RELOAD ON *.* TO nr_v@'%'",
		"GRANT SELECT ON `nr\\_a\\_b`.* TO ''@'nr-anon.example'",
		"GRANT EXECUTE, EVENT ON `nr\\_a\\_b`.* TO nr_role",
		"GRANT INSERT ON nr_a_b.t TO nr_role",
		"GRANT SELECT ON `nr\\_a\\_b`.* TO PUBLIC",
		"CREATE DATABASE nr_books",
		historyDDL("nr_books"),
		"INSERT INTO nr_books.declared_grants (user, host, db, tbl, privileges, grant_option) VALUES" +
			" ('nr_u', 'localhost', 'nr_a_b', '*', 'SELECT,INSERT', 0), ('nr_u', 'localhost', '*', '*', 'PROCESS', 1)," +
			" ('nr_u', 'nr-other', 'nr_a_b', '*', 'SELECT', 0), ('NR_U', 'localhost', 'nr_a_b', '*', 'DELETE', 0)," +
			" ('nr_u', 'localhost ', 'x', '*', 'SELECT', 0), ('nr_v', '%', 'nr_a_b', 't', 'UPDATE', 0)",
	} {
		mustExec(t, root, q)
	}

	c := rootConn(t, srv)
	ctx := t.Context()
	allAccts, err := c.readAccounts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	allGrants, err := c.readGrants(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	allHist, err := c.readHistory(ctx, "nr_books", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := []accountKey{
		{"nr_u", "localhost"}, {"nr_u", "nr-other"}, {"NR_U", "localhost"}, {"nr_v", "%"},
		{"", "nr-anon.example"}, {"nr_role", ""}, {publicRole, ""}, {"nr_cap", "nr-cap.example"},
		{"nr_none", "localhost"}, // no such account
	}
	for _, a := range keys {
		t.Run(a.String(), func(t *testing.T) {
			one, err := c.readAccounts(ctx, &a)
			if err != nil {
				t.Fatal(err)
			}
			want, exists := allAccts[a]
			if got, ok := one[a]; ok != exists || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("account: read alone %v %+v, in the whole read %v %+v", ok, got, exists, want)
			}
			if len(one) > 1 || (len(one) == 1 && !exists) {
				t.Errorf("account: the read of %s alone holds %d accounts", a, len(one))
			}

			grants, err := c.readGrants(ctx, &a)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := showGrants(grants.m), showGrants(levelsOf(allGrants.m, a)); g != w {
				t.Errorf("privileges read alone:\n%s\n\nin the whole read:\n%s", g, w)
			}
			for _, dbLevel := range []bool{true, false} {
				part, err := c.readAccountGrants(ctx, a, dbLevel)
				if err != nil {
					t.Fatal(err)
				}
				want := map[grantKey]*grantState{}
				for k, st := range levelsOf(allGrants.m, a) {
					if (k.Database != "*" && k.Table == "*") == dbLevel {
						want[k] = st
					}
				}
				if g, w := showGrants(part.m), showGrants(want); g != w {
					t.Errorf("privileges read alone, database levels %v:\n%s\n\nin the whole read:\n%s", dbLevel, g, w)
				}
			}
			if n := len(levelsOf(grants.m, a)); n != len(grants.m) {
				t.Errorf("privileges: the read of %s alone holds %d levels of others", a, len(grants.m)-n)
			}
			wild := 0
			for k := range grants.m {
				if k.Wildcard {
					wild++
				}
			}
			if wild != grants.wildcards {
				t.Errorf("privileges: %d wildcard levels, counted %d", wild, grants.wildcards)
			}

			hist, err := c.readHistory(ctx, "nr_books", &a)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := fmt.Sprint(hist.m), fmt.Sprint(levelsOf(allHist.m, a)); !hist.exists || g != w {
				t.Errorf("declared grants read alone (exists %v): %s, in the whole read: %s", hist.exists, g, w)
			}
		})
	}
	// The cases are there (reads that dropped them on both sides would
	// agree too).
	for a, want := range map[accountKey]string{
		{"nr_u", "localhost"}:        "nr_a% " + strings.Join(databasePrivileges, ",") + "|nr_a_b SELECT,INSERT",
		{"NR_U", "localhost"}:        "* PROCESS|nr_a_b DELETE",
		{"nr_v", "%"}:                "* RELOAD,PROCESS|nr_a_b LOCK TABLES,SHOW VIEW|nr_a_b.t UPDATE|nr_other ",
		{"nr_role", ""}:              "nr_a_b EXECUTE,EVENT|nr_a_b.t INSERT",
		{"nr_cap", "nr-cap.example"}: "nr_a_b SELECT,INSERT",
		{"", "nr-anon.example"}:      "nr_a_b SELECT",
	} {
		grants, err := c.readGrants(ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		var levels []string
		for k, st := range grants.m {
			l := k.Database
			if k.Table != "*" {
				l += "." + k.Table
			}
			if st.Privs.len() > 0 || st.GrantOption {
				levels = append(levels, l+" "+strings.Join(st.Privs.list(), ","))
			}
		}
		slices.Sort(levels)
		if got := strings.Join(levels, "|"); got != want {
			t.Errorf("%s holds %s, want %s", a, got, want)
		}
	}
	if st := allGrants.m[grantKey{User: publicRole, Database: "nr_a_b", Table: "*"}]; st == nil || st.Privs.String() != "[SELECT]" {
		t.Errorf("PUBLIC on nr_a_b: %+v", st)
	}
	if st, ok := allAccts[accountKey{"nr_cap", "nr-cap.example"}]; !ok || st.Limits.MaxUserConnections != 3 {
		t.Errorf("the hand-made account: %v %+v", ok, st.Limits)
	}
	if st := allAccts[accountKey{"nr_v", "%"}]; !st.AuthOr || len(st.Methods) != 2 {
		t.Errorf("nr_v@%%: want two methods, read %d", len(st.Methods))
	}
	if n := len(levelsOf(allHist.m, accountKey{"nr_u", "localhost"})); n != 2 {
		t.Errorf("declared grants of nr_u@localhost: %d, want 2", n)
	}
}

// userSpecOf returns the spec of a mariadb.user resource as Check leaves
// it.
func userSpecOf(t *testing.T, r *reconciler.Resource) *UserSpec {
	t.Helper()
	var s UserSpec
	if err := r.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	if err := (&UserKind{}).Check(r, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// grantSpecOf returns the spec of a mariadb.grant resource as Check
// leaves it.
func grantSpecOf(t *testing.T, r *reconciler.Resource) *GrantSpec {
	t.Helper()
	var s GrantSpec
	if err := r.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	if err := (&GrantKind{}).Check(r, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestRun_PlansSeeTheRunsApplies: within one run (one cache), a plan made
// after an apply of its account sees what the apply did, for the user
// and for each grant, while another account is planned from the run's
// first read (no query). And a verify (Env.Verify, a fresh cache) sees a
// change made by hand since, which the run's plans, sharing the run's
// read, do not.
func TestRun_PlansSeeTheRunsApplies(t *testing.T) {
	root := srv.RootDB(t)
	clean(t, root, "rs_a@%", "rs_b@%", "rs_db1")
	t.Cleanup(func() { clean(t, root, "rs_a@%", "rs_b@%", "rs_db1") })
	mustExec(t, root, "CREATE DATABASE rs_db1")
	mustExec(t, root, "CREATE TABLE rs_db1.t (a INT)")
	mustExec(t, root, "CREATE USER rs_b@'%' IDENTIFIED BY 'pw-b'")
	h := newHarness(t, srv)
	h.secrets["mariadb/rs_a"], h.secrets["mariadb/rs_b"] = "pw-a", "pw-b"
	user := func(name string) reconciler.Resource {
		return h.res("mariadb.user:"+name+"@%", map[string]any{"user": name, "host": "%", "password": map[string]any{"secret": "mariadb/" + name}})
	}
	grant := func(name, db string, privs ...string) reconciler.Resource {
		return h.res("mariadb.grant:"+name+"@%/"+db+".*", map[string]any{"user": name, "host": "%", "database": db, "privileges": privs})
	}
	uk, gk := &UserKind{h.kinds}, &GrantKind{h.kinds}
	env := &reconciler.Env{Secrets: h.secrets, Cache: reconciler.NewCache()}
	t.Cleanup(func() { _ = env.Cache.Close() })
	ctx := t.Context()

	planUser := func(env *reconciler.Env, r reconciler.Resource) *reconciler.Plan {
		t.Helper()
		p, err := uk.Plan(ctx, env, &r, userSpecOf(t, &r))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	planGrant := func(env *reconciler.Env, r reconciler.Resource) *reconciler.Plan {
		t.Helper()
		p, err := gk.Plan(ctx, env, &r, grantSpecOf(t, &r))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	apply := func(p *reconciler.Plan) {
		t.Helper()
		if p.Apply == nil {
			t.Fatalf("nothing to apply: %+v", p)
		}
		if err := p.Apply(ctx); err != nil {
			t.Fatal(err)
		}
	}
	questions := func(f func()) int64 {
		t.Helper()
		s0 := mariadbtest.Status(t, root)
		s1 := mariadbtest.Status(t, root)
		f()
		s2 := mariadbtest.Status(t, root)
		return mariadbtest.Delta(s1, s2, "Questions") - mariadbtest.Delta(s0, s1, "Questions")
	}

	// The run's first reads: rs_b exists, rs_a does not.
	if p := planUser(env, user("rs_b")); p.HasChanges() {
		t.Fatalf("rs_b: %+v", p.Changes)
	}
	p := planUser(env, user("rs_a"))
	if p.Action != reconciler.ActionCreate {
		t.Fatalf("rs_a: %+v", p)
	}
	for _, g := range []reconciler.Resource{grant("rs_a", "rs_db1", "SELECT"), grant("rs_b", "rs_db1", "SELECT")} {
		if p := planGrant(env, g); p.Action != reconciler.ActionCreate {
			t.Fatalf("%s before: %+v", g.ID, p)
		}
	}
	apply(p)
	if p := planUser(env, user("rs_a")); p.HasChanges() {
		t.Fatalf("rs_a planned after its creation: %+v", p.Changes)
	}
	g1 := planGrant(env, grant("rs_a", "rs_db1", "SELECT"))
	apply(g1)
	if p := planGrant(env, grant("rs_a", "rs_db1", "SELECT")); p.HasChanges() {
		t.Fatalf("rs_a's grant planned after its apply: %+v", p.Changes)
	}
	// A grant on a level of its own, after the first: a revoke, classed
	// by the declared grants the first apply recorded.
	g2 := planGrant(env, grant("rs_a", "rs_db2", "SELECT", "INSERT"))
	apply(g2)
	p = planGrant(env, grant("rs_a", "rs_db2", "SELECT"))
	if len(p.Changes) != 1 || p.Changes[0].Field != "revoke" || p.Changes[0].Before != "INSERT" {
		t.Fatalf("narrowing rs_a's second grant: %+v", p.Changes)
	}
	// A global grant and a table grant: read from other statements than
	// a database's.
	for _, g := range []reconciler.Resource{
		grant("rs_a", "*", "PROCESS"),
		h.res("mariadb.grant:rs_a@%/rs_db1.t", map[string]any{"user": "rs_a", "host": "%", "database": "rs_db1", "table": "t", "privileges": []string{"UPDATE"}}),
	} {
		apply(planGrant(env, g))
		if p := planGrant(env, g); p.HasChanges() {
			t.Fatalf("%s planned after its apply: %+v", g.ID, p.Changes)
		}
	}
	// Right after the table grant's read of rs_a (global and table
	// levels), its database levels are read for themselves.
	if p := planGrant(env, grant("rs_a", "rs_db1", "SELECT")); p.HasChanges() {
		t.Fatalf("rs_a's first grant after the table grant's read: %+v", p.Changes)
	}
	// rs_b was not touched: planned from the run's reads, with no query.
	if n := questions(func() {
		if p := planUser(env, user("rs_b")); p.HasChanges() {
			t.Fatalf("rs_b: %+v", p.Changes)
		}
		if p := planGrant(env, grant("rs_b", "rs_db1", "SELECT")); p.Action != reconciler.ActionCreate {
			t.Fatalf("rs_b's grant: %+v", p)
		}
	}); n != 0 {
		t.Errorf("planning an account no apply touched sent %d queries", n)
	}

	// By hand, behind the run's back, after the run's last read of rs_a
	// (made for this plan: the grants' applies marked it).
	if p := planUser(env, user("rs_a")); p.HasChanges() {
		t.Fatalf("rs_a: %+v", p.Changes)
	}
	mustExec(t, root, "ALTER USER rs_a@'%' WITH MAX_USER_CONNECTIONS 5")
	mustExec(t, root, "GRANT DELETE ON `rs\\_db1`.* TO rs_a@'%'")
	if n := questions(func() {
		if p := planUser(env, user("rs_a")); p.HasChanges() {
			t.Fatalf("rs_a from the run's read: %+v", p.Changes)
		}
	}); n != 0 {
		t.Errorf("planning rs_a again, with no apply since its read, sent %d queries", n)
	}
	verify := &reconciler.Env{Secrets: h.secrets, Cache: reconciler.NewCache(), Verify: true}
	t.Cleanup(func() { _ = verify.Cache.Close() })
	p = planUser(verify, user("rs_a"))
	if len(p.Changes) != 1 || p.Changes[0].Field != "limits.maxUserConnections" || p.Observed["limits.maxUserConnections"] != "5" {
		t.Fatalf("verify of rs_a: %+v, observed %v", p.Changes, p.Observed)
	}
	p = planGrant(verify, grant("rs_a", "rs_db1", "SELECT"))
	if p.Observed["privileges"] != "SELECT, DELETE" {
		t.Fatalf("verify of rs_a's grant: observed %v", p.Observed)
	}
	// The verify reads the one account, as little as a plan of it.
	if n := questions(func() { planUser(verify, user("rs_b")) }); n != 1 {
		t.Errorf("verify of a user: %d queries, want 1", n)
	}
}

// TestFirstRun_ReadsLinearInUsers: a first run over 80 users with 4
// grants each reads (bytes the server sends) per user no more than one
// over 10 users does: a plan after an apply reads the account it plans,
// not every account. (Had every such plan read every account, the bytes
// per user would grow with the accounts on the server: by 1.25 times or
// more unless it held 270 accounts before.)
func TestFirstRun_ReadsLinearInUsers(t *testing.T) {
	root := srv.RootDB(t)
	var before int
	if err := root.QueryRow("SELECT COUNT(*) FROM mysql.global_priv").Scan(&before); err != nil {
		t.Fatal(err)
	}
	perUser := map[int]float64{}
	for _, users := range []int{10, 80} {
		h := newHarness(t, srv)
		cat := usersCatalog(h, "lin", users)
		var names []string
		for i := range users {
			names = append(names, fmt.Sprintf("lin%d_u%d@%%", users, i))
		}
		clean(t, root, names...)
		t.Cleanup(func() { clean(t, root, names...) })
		s0 := mariadbtest.Status(t, root)
		rep := h.run(cat...)
		s1 := mariadbtest.Status(t, root)
		if n := rep.Count(reconciler.Created); n != len(cat) {
			t.Fatalf("%d users: %d of %d created:\n%s", users, n, len(cat), outcomes(rep))
		}
		perUser[users] = float64(mariadbtest.Delta(s0, s1, "Bytes_sent")) / float64(users)
	}
	t.Logf("%d accounts before; bytes sent per user: %.0f with 10 users, %.0f with 80", before, perUser[10], perUser[80])
	if before >= 270 {
		t.Skipf("%d accounts on the server: too many for the comparison to tell", before)
	}
	if perUser[80] > 1.25*perUser[10] {
		t.Fatalf("bytes sent per user: %.0f with 10 users, %.0f with 80: a first run reads every account again and again", perUser[10], perUser[80])
	}
}
