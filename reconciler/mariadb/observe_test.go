package mariadb

import (
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// infoSchemaPrivilegesQuery reads every account's privileges at every
// level from information_schema, one row per privilege: what the server
// reports, for tests to hold fsgit's reading against.
const infoSchemaPrivilegesQuery = `SELECT GRANTEE, '*', '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, '*', PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES
UNION ALL SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.TABLE_PRIVILEGES`

// TestPrivilegesAsInformationSchema: what fsgit reads (database-level
// privileges from mysql.db's columns) is what information_schema reports,
// row by row, for accounts and roles with every kind of grant: escaped and
// wildcard database names, ALL PRIVILEGES, a grant option alone, a host
// written in capitals, a role, and the server's own PUBLIC grants.
func TestPrivilegesAsInformationSchema(t *testing.T) {
	root := srv.RootDB(t)
	clean(t, root, "pv_a_b", "pv_u@localhost", "pv_v@%")
	_, _ = root.Exec("DROP ROLE IF EXISTS pv_role")
	t.Cleanup(func() {
		clean(t, root, "pv_a_b", "pv_u@localhost", "pv_v@%")
		_, _ = root.Exec("DROP ROLE IF EXISTS pv_role")
	})
	mustExec(t, root, "CREATE DATABASE pv_a_b")
	mustExec(t, root, "CREATE TABLE pv_a_b.t (a INT)")
	mustExec(t, root, "CREATE USER pv_u@LocalHost")
	mustExec(t, root, "CREATE USER pv_v@'%'")
	mustExec(t, root, "CREATE ROLE pv_role")
	for _, q := range []string{
		"GRANT SELECT, INSERT ON `pv\\_a\\_b`.* TO pv_u@localhost",
		"GRANT ALL PRIVILEGES ON `pv_a%`.* TO pv_u@localhost WITH GRANT OPTION",
		"GRANT USAGE ON `pv\\_other`.* TO pv_v@'%' WITH GRANT OPTION",
		"GRANT SHOW VIEW, CREATE TEMPORARY TABLES, DELETE HISTORY, LOCK TABLES ON `pv\\_a\\_b`.* TO pv_v@'%'",
		"GRANT UPDATE ON pv_a_b.t TO pv_v@'%'",
		"GRANT PROCESS ON *.* TO pv_v@'%'",
		"GRANT EXECUTE, ALTER ROUTINE, CREATE ROUTINE, EVENT, TRIGGER ON `pv\\_a\\_b`.* TO pv_role",
	} {
		mustExec(t, root, q)
	}

	k := New()
	t.Cleanup(func() { _ = k.Close() })
	c, err := k.pools.get(Server{Socket: srv.Socket(), Port: 3306, AdminUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.privileges(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}

	wantStates := newGrantStates(0)
	rows, err := root.Query(infoSchemaPrivilegesQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var grantee, db, table, priv, grantable string
		if err := rows.Scan(&grantee, &db, &table, &priv, &grantable); err != nil {
			t.Fatal(err)
		}
		user, host, ok := parseGrantee([]byte(grantee))
		if !ok {
			continue
		}
		key := grantKey{User: string(user), Host: strings.ToLower(string(host)), Database: db, Table: table}
		if db != "*" && table == "*" {
			key.Database, key.Wildcard = parseDBPattern(db)
		}
		st := wantStates.state(key)
		if priv != "USAGE" {
			st.Privs.add(priv)
		}
		st.GrantOption = st.GrantOption || grantable == "YES"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	if g, w := showGrants(got.m), showGrants(wantStates.m); g != w {
		t.Fatalf("fsgit reads:\n%s\n\ninformation_schema reports:\n%s", g, w)
	}
	// The cases above are all there (a reading that dropped them on both
	// sides would agree too).
	for key, wantPrivs := range map[grantKey]string{
		{User: "pv_u", Host: "localhost", Database: "pv_a_b", Table: "*"}:                "SELECT,INSERT",
		{User: "pv_u", Host: "localhost", Database: "pv_a%", Table: "*", Wildcard: true}: strings.Join(databasePrivileges, ","),
		{User: "pv_v", Host: "%", Database: "pv_other", Table: "*"}:                      "",
		{User: "pv_v", Host: "%", Database: "pv_a_b", Table: "*"}:                        "CREATE TEMPORARY TABLES,LOCK TABLES,SHOW VIEW,DELETE HISTORY",
		{User: "pv_v", Host: "%", Database: "pv_a_b", Table: "t"}:                        "UPDATE",
		{User: "pv_v", Host: "%", Database: "*", Table: "*"}:                             "PROCESS",
		{User: "pv_role", Host: "", Database: "pv_a_b", Table: "*"}:                      "EXECUTE,CREATE ROUTINE,ALTER ROUTINE,EVENT,TRIGGER",
	} {
		st := got.m[key]
		if st == nil {
			t.Errorf("%+v: not read; read %d levels", key, len(got.m))
			continue
		}
		if l := strings.Join(st.Privs.list(), ","); l != wantPrivs {
			t.Errorf("%+v: %s, want %s", key, l, wantPrivs)
		}
	}
	if st := got.m[grantKey{User: "pv_v", Host: "%", Database: "pv_other", Table: "*"}]; st == nil || !st.GrantOption {
		t.Errorf("grant option alone on pv_other: %+v", st)
	}
}

func TestColumnPrivilege(t *testing.T) {
	for col, want := range map[string]string{
		"Select_priv":              "SELECT",
		"Create_tmp_table_priv":    "CREATE TEMPORARY TABLES",
		"Show_create_routine_priv": "SHOW CREATE ROUTINE",
		"Delete_history_priv":      "DELETE HISTORY",
		"Db":                       "",
	} {
		if got := columnPrivilege(col); got != want {
			t.Errorf("%s: %q, want %q", col, got, want)
		}
	}
}

// TestPools_SameServerSamePool: specs that name the same endpoint and admin
// identity share a pool, found without building its key; any difference
// in them is another pool.
func TestPools_SameServerSamePool(t *testing.T) {
	var p pools
	t.Cleanup(func() { _ = p.closeAll() })
	get := func(s Server) *conn {
		t.Helper()
		c, err := p.get(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pw := func(name string) *reconciler.SecretRef { return &reconciler.SecretRef{Secret: name} }
	base := Server{Socket: "/run/a.sock", Port: 3306, AdminUser: "root"}
	c := get(base)
	same := []Server{base, {Socket: "/run/a.sock", Port: 3307, AdminUser: "root", BookkeepingDatabase: "other"}}
	for _, s := range same {
		if get(s) != c {
			t.Errorf("%+v: another pool than %+v", s, base)
		}
	}
	withPW := get(Server{Socket: "/run/a.sock", Port: 3306, AdminUser: "root", AdminPassword: pw("x")})
	if get(Server{Socket: "/run/a.sock", Port: 3306, AdminUser: "root", AdminPassword: pw("x")}) != withPW {
		t.Error("the same password secret, another pool")
	}
	seen := map[*conn]string{c: "base", withPW: "password x"}
	for name, s := range map[string]Server{
		"socket":     {Socket: "/run/b.sock", Port: 3306, AdminUser: "root"},
		"user":       {Socket: "/run/a.sock", Port: 3306, AdminUser: "admin"},
		"password y": {Socket: "/run/a.sock", Port: 3306, AdminUser: "root", AdminPassword: pw("y")},
		"empty name": {Socket: "/run/a.sock", Port: 3306, AdminUser: "root", AdminPassword: pw("")},
		"tcp":        {Host: "db", Port: 3306, AdminUser: "root"},
		"tcp port":   {Host: "db", Port: 3307, AdminUser: "root"},
	} {
		got := get(s)
		if other, ok := seen[got]; ok {
			t.Errorf("%s: the pool of %s", name, other)
		}
		seen[got] = name
	}
}
