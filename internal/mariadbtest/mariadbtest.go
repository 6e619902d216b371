// Package mariadbtest starts a throwaway MariaDB server for tests: Debian's
// mariadbd on a temporary datadir and unix socket, initialized with
// mariadb-install-db, run as the OS user (root on CI, with --user=root), and
// killed when the test or package ends.
//
// One server per test:
//
//	srv := mariadbtest.Start(t)
//	db := srv.RootDB(t)
//
// One server per package, from TestMain:
//
//	var srv *mariadbtest.Server
//
//	func TestMain(m *testing.M) {
//		var stop func()
//		srv, stop = mariadbtest.StartMain()
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
// Root connects over the socket with the unix_socket plugin: no password.
// Use [Server.Status] and [WriteCounters] to prove that a run wrote nothing.
package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options change how a server is started. The zero value is a server with
// networking off, reachable only through its socket.
type Options struct {
	// TCP makes the server listen on a free port of 127.0.0.1 as well
	// (see [Server.Addr]).
	TCP bool
	// Args are extra mariadbd options, e.g. "--general-log=1".
	Args []string
	// DefaultsFile, when set, is read by mariadbd at every start (instead
	// of --no-defaults), as a packaged server reads its server.cnf. The
	// harness's own options (datadir, socket, networking, sizes) are given
	// on the command line and win over the file's.
	DefaultsFile string
	// Unsecured initializes the datadir as mariadb-install-db does by
	// default, without --skip-test-db: with the anonymous accounts
	// ''@'localhost' and ''@'<hostname>', the test database and the grants
	// to everyone on test and test\_%, as a server is before
	// mysql_secure_installation.
	Unsecured bool
}

// Server is a running (or stopped) throwaway mariadbd.
type Server struct {
	dir    string // short temp dir: socket path limit is 107 bytes
	opts   Options
	port   int
	binary string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binaries where Debian's mariadb-server puts them; PATH is searched first.
const (
	defaultServer  = "/usr/sbin/mariadbd"
	defaultInstall = "/usr/bin/mariadb-install-db"
)

// Start starts a server for one test (or benchmark) and stops it and
// removes its files in tb's cleanup. It fails tb if the server cannot
// start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is [Start] with options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Launch(opts)
	if err != nil {
		tb.Fatalf("start mariadbd: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// StartMain starts a server for a whole test package, from TestMain. The
// returned function stops it and removes its files. It panics if the server
// cannot start, which fails the package with the reason.
func StartMain() (*Server, func()) {
	s, err := Launch(Options{})
	if err != nil {
		panic(fmt.Sprintf("mariadbtest: start mariadbd: %v", err))
	}
	return s, s.Close
}

// Launch initializes a datadir and starts a server on it. The caller must
// call Close.
func Launch(opts Options) (*Server, error) {
	bin, err := lookup("mariadbd", defaultServer)
	if err != nil {
		return nil, err
	}
	install, err := lookup("mariadb-install-db", defaultInstall)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mdb")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	s := &Server{dir: dir, opts: opts, binary: bin}
	if len(s.Socket()) > 100 {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("socket path %q too long for a unix socket (set TMPDIR shorter)", s.Socket())
	}
	if opts.TCP {
		if s.port, err = freePort(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	args := []string{"--no-defaults", "--datadir=" + s.datadir(), "--auth-root-authentication-method=socket"}
	if !opts.Unsecured {
		args = append(args, "--skip-test-db")
	}
	args = append(args, userArgs()...)
	args = append(args, sizeArgs()...)
	out, err := exec.Command(install, args...).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, tail(out, 2000))
	}
	if err := s.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func lookup(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("find %s: not in PATH nor at %s (install Debian's mariadb-server)", name, fallback)
}

// userArgs runs the server as the current OS user; mariadbd refuses to run
// as root without --user=root.
func userArgs() []string {
	u, err := user.Current()
	if err != nil {
		return nil
	}
	return []string{"--user=" + u.Username}
}

// sizeArgs keep a throwaway datadir small and quick to create.
func sizeArgs() []string {
	return []string{"--innodb-log-file-size=8M", "--innodb-data-file-path=ibdata1:12M:autoextend"}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) datadir() string { return filepath.Join(s.dir, "d") }

// Socket returns the server's unix socket path.
func (s *Server) Socket() string { return filepath.Join(s.dir, "s.sock") }

// Dir returns the server's temporary directory (datadir "d", socket,
// error log "error.log").
func (s *Server) Dir() string { return s.dir }

// Addr returns "127.0.0.1:port" when the server was started with TCP, or ""
// otherwise.
func (s *Server) Addr() string {
	if s.port == 0 {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(s.port)
}

// ErrorLog returns the last part of the server's error log, for failure
// messages.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(tail(b, 4000))
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("mariadbd already running")
	}
	first := "--no-defaults"
	if s.opts.DefaultsFile != "" {
		first = "--defaults-file=" + s.opts.DefaultsFile
	}
	args := []string{
		first,
		"--datadir=" + s.datadir(),
		"--socket=" + s.Socket(),
		"--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"),
		"--log-error=" + filepath.Join(s.dir, "error.log"),
		// Its own temporary directory: a large information_schema query
		// spills to disk there, and a test elsewhere that cleans /tmp
		// must not delete its files under it.
		"--tmpdir=" + s.dir,
		"--innodb-buffer-pool-size=32M",
		"--performance-schema=OFF",
		"--skip-log-bin",
	}
	args = append(args, userArgs()...)
	args = append(args, sizeArgs()...)
	if s.port != 0 {
		args = append(args, "--bind-address=127.0.0.1", "--port="+strconv.Itoa(s.port))
	} else {
		args = append(args, "--skip-networking")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.binary, args...)
	// Own process group, so that a Ctrl-C on go test does not race our
	// shutdown, and so that Stop signals only this server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("mariadbd exited while starting: %s\n%s", out.String(), s.ErrorLog())
		default:
		}
		if s.ping() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("mariadbd not ready after 60s:\n%s", s.ErrorLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) ping() error {
	db, err := sql.Open("mysql", s.DSN("root", "", ""))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30s) and waits
// for it to exit. The datadir is kept: [Server.Restart] starts it again.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops the server if it runs and starts it again on the same
// datadir and socket, waiting until it is ready.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// CPUTime returns the CPU time (user and system) the running server has
// used since it started, from /proc: what a benchmark's queries cost the
// server, which a busy machine inflates far less than wall time.
func (s *Server) CPUTime() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0, errors.New("cpu time: mariadbd is not running")
	}
	return procCPUTime(s.cmd.Process.Pid)
}

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTicks = 100

// procCPUTime reads utime + stime of process pid.
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Kill()
	_ = os.RemoveAll(s.dir)
}

// DSN returns a go-sql-driver/mysql DSN for user over the socket, with
// database db ("" for none).
func (s *Server) DSN(user, pass, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, pass, "unix", s.Socket(), db
	c.AllowNativePasswords = true
	return c.FormatDSN()
}

// RootDB opens a pool as root over the socket (unix_socket auth) and closes
// it in tb's cleanup. The driver's log lines about connections that died
// with a stopped server are dropped.
func (s *Server) RootDB(tb testing.TB) *sql.DB {
	tb.Helper()
	cfg, err := mysql.ParseDSN(s.DSN("root", "", ""))
	if err != nil {
		tb.Fatalf("open root connection: %v", err)
	}
	cfg.Logger = quiet{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("open root connection: %v", err)
	}
	db := sql.OpenDB(conn)
	tb.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		tb.Fatalf("connect as root over %s: %v\n%s", s.Socket(), err, s.ErrorLog())
	}
	return db
}

// Status returns the server's numeric global status counters (SHOW GLOBAL
// STATUS), e.g. "Com_insert", "Questions". Reading them costs one
// Com_show_status and one Questions.
func Status(tb testing.TB, db *sql.DB) map[string]int64 {
	tb.Helper()
	rows, err := db.Query("SHOW GLOBAL STATUS")
	if err != nil {
		tb.Fatalf("show global status: %v", err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			tb.Fatalf("show global status: %v", err)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			m[k] = n
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("show global status: %v", err)
	}
	return m
}

// Status is the package function [Status] on a fresh root connection.
func (s *Server) Status(tb testing.TB) map[string]int64 {
	tb.Helper()
	return Status(tb, s.RootDB(tb))
}

// writePrefixes name the Com_ counters of statements that change data,
// schema, accounts or privileges.
var writePrefixes = []string{
	"Com_insert", "Com_update", "Com_delete", "Com_replace", "Com_load",
	"Com_create_", "Com_drop_", "Com_alter_", "Com_rename_", "Com_truncate",
	"Com_grant", "Com_revoke", "Com_set_password", "Com_flush",
	"Innodb_rows_inserted", "Innodb_rows_updated", "Innodb_rows_deleted",
}

// WriteCounters returns the counters of write statements (Com_insert,
// Com_create_user, Com_grant, Com_revoke, Com_alter_user, Innodb_rows_* ...)
// that grew between two [Status] snapshots, with by how much. An empty map
// means no statement that writes ran in between, on any connection.
func WriteCounters(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		for _, p := range writePrefixes {
			if strings.HasPrefix(k, p) {
				if d := v - before[k]; d != 0 {
					out[k] = d
				}
				break
			}
		}
	}
	return out
}

// Delta returns after[key] - before[key], e.g. for "Questions".
func Delta(before, after map[string]int64, key string) int64 { return after[key] - before[key] }

// quiet is a mysql.Logger that drops everything.
type quiet struct{}

func (quiet) Print(...any) {}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
