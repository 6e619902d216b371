package mariadbtest

import (
	"database/sql"
	"os"
	"testing"
	"time"
)

func TestStart(t *testing.T) {
	srv := Start(t)
	db := srv.RootDB(t)
	var user string
	if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "root@localhost" {
		t.Fatalf("connected as %q", user)
	}

	before := Status(t, db)
	if _, err := db.Exec("CREATE DATABASE t1"); err != nil {
		t.Fatal(err)
	}
	w := WriteCounters(before, Status(t, db))
	if w["Com_create_db"] != 1 {
		t.Fatalf("write counters %v, want Com_create_db 1", w)
	}
	quiet := Status(t, db)
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if w := WriteCounters(quiet, Status(t, db)); len(w) != 0 {
		t.Fatalf("a SELECT counted as a write: %v", w)
	}

	if _, err := db.Exec("CREATE USER u@localhost IDENTIFIED BY 'pw'"); err != nil {
		t.Fatal(err)
	}
	udb, err := sql.Open("mysql", srv.DSN("u", "pw", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer udb.Close()
	if err := udb.Ping(); err != nil {
		t.Fatalf("password login: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("ping succeeded on a stopped server")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='t1'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database lost across restart: %d %v", n, err)
	}
}

func TestStartWith_TCP(t *testing.T) {
	srv := StartWith(t, Options{TCP: true})
	if srv.Addr() == "" {
		t.Fatal("no address")
	}
	db := srv.RootDB(t)
	if _, err := db.Exec("CREATE USER tcp@'127.0.0.1' IDENTIFIED BY 'pw'"); err != nil {
		t.Fatal(err)
	}
	tdb, err := sql.Open("mysql", "tcp:pw@tcp("+srv.Addr()+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer tdb.Close()
	if err := tdb.Ping(); err != nil {
		t.Fatalf("tcp login: %v", err)
	}
}

func TestProcCPUTime(t *testing.T) {
	d, err := procCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the test's own CPU time grows: the figure is live.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
		d2, err := procCPUTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if d2 > d {
			return
		}
	}
	t.Fatalf("cpu time stayed at %v after 5 s of spinning", d)
}
