package mariadb

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// FuzzIdentifiers shows that no user, host, database or table name can run
// a second statement. Two walls are tested separately, each on its own:
//
//  1. validation: a name the kinds accept matches the schema's patterns,
//     which hold no quote, backtick, semicolon, space or comment marker;
//  2. quoting, for any string whatever, validation bypassed: the quoted
//     names are sent to the real server on a connection that allows
//     multiple statements, under the default sql_mode and under
//     ANSI,NO_BACKSLASH_ESCAPES; the server must see exactly one statement
//     (one result, four columns) and a canary table must survive.
//
// Run: go test ./reconciler/mariadb -run '^$' -fuzz FuzzIdentifiers -fuzztime 60s
func FuzzIdentifiers(f *testing.F) {
	for _, s := range [][4]string{
		{"fs_user", "localhost", "feature_store_online", "*"},
		{"a`b", "%", "x`; DROP TABLE fuzz_canary.t; --", "t"},
		{"x'; DROP TABLE fuzz_canary.t; -- ", "h\\", "\"db\"", "`"},
		{"```", "'", ";", "/*"},
		{"u\x00", "h\n", "#", "*/ ; SELECT 1"},
		{"é", "::1", "d$", "tbl` , 1 AS `x"},
		{"`; SELECT 2; -- `", "\\'; SELECT 3; #", "\"; SELECT 4; --\"", "` FROM dual; SELECT 5; --"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	root := srv.RootDB(f)
	mustExec(f, root, "CREATE DATABASE IF NOT EXISTS fuzz_canary")
	mustExec(f, root, "CREATE TABLE IF NOT EXISTS fuzz_canary.t (a INT)")
	var conns []*sql.DB
	for _, mode := range []string{"", "'ANSI,NO_BACKSLASH_ESCAPES'"} {
		cfg, err := mysql.ParseDSN(srv.DSN("root", "", ""))
		if err != nil {
			f.Fatal(err)
		}
		cfg.MultiStatements = true
		if mode != "" {
			cfg.Params = map[string]string{"sql_mode": mode}
		}
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			f.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		f.Cleanup(func() { _ = db.Close() })
		conns = append(conns, db)
	}

	f.Fuzz(func(t *testing.T, user, host, database, table string) {
		// Wall 1: what validation lets through is harmless text.
		spec, _ := json.Marshal(map[string]any{"user": user, "host": host, "database": database, "table": table, "privileges": []string{"SELECT"},
			"server": map[string]any{"socket": "/run/mysqld/mysqld.sock", "port": 3306, "adminUser": "root"}})
		r := reconciler.Resource{ID: reconciler.ID("mariadb.grant:" + user + "@" + host + "/" + database + "." + table), Spec: spec}
		if _, err := reconciler.DecodeAs(&GrantKind{}, &r); err == nil {
			for _, v := range []string{user, host, database, table} {
				if strings.ContainsAny(v, "`'\"\\; \t\n\r\x00#/*") && v != "*" {
					t.Fatalf("validation accepted %q", v)
				}
			}
		}

		// Wall 2: quoting alone keeps any string one identifier.
		q := "SELECT 1 AS " + quoteIdent(user) + ", 2 AS " + quoteIdent(host) + ", 3 AS " + quoteIdent(database) + ", 4 AS " + quoteIdent(table)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for _, db := range conns {
			rows, err := db.QueryContext(ctx, q)
			if err == nil {
				cols, _ := rows.Columns()
				for rows.Next() {
				}
				more := rows.NextResultSet()
				rows.Close()
				if len(cols) != 4 || more {
					t.Fatalf("%q: %d columns, more results %v: the input escaped its quotes", q, len(cols), more)
				}
			}
			// Also in account and grant syntax: REVOKE on an account that
			// does not exist fails, and must fail as one statement.
			_, _ = db.ExecContext(ctx, "REVOKE SELECT ON "+level(orStar(database), orStar(table))+" FROM "+account(user, host)+"; SELECT 1")
			if ctx.Err() != nil {
				t.Fatalf("hung on %q", q)
			}
		}
		var n int
		if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'fuzz_canary' AND TABLE_NAME = 't'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("canary table gone after %q (%v)", q, err)
		}
	})
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
