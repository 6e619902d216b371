package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/go-sql-driver/mysql"
)

// Server is the #MariaDBServer endpoint of every mariadb.* resource: how
// fsgit reaches the server and as whom.
type Server struct {
	// Socket is the unix socket, used unless Host is set (the schema
	// defaults it to /run/mysqld/mysqld.sock).
	Socket string `json:"socket,omitempty"`
	// Host, when set, makes fsgit connect over TCP to Host:Port.
	Host string `json:"host,omitempty"`
	// Port is the TCP port (the schema defaults it to 3306).
	Port int `json:"port,omitempty"`
	// AdminUser is the account fsgit connects as (the schema defaults it
	// to root).
	AdminUser string `json:"adminUser,omitempty"`
	// AdminPassword is the admin account's password. Absent: unix_socket
	// authentication, which works for root when fsgit runs as OS root.
	AdminPassword *reconciler.SecretRef `json:"adminPassword,omitempty"`
	// BookkeepingDatabase is the database where fsgit keeps its own
	// table of declared grants (declared_grants): `fsgit` when empty.
	BookkeepingDatabase string `json:"bookkeepingDatabase,omitempty"`
}

// bookkeeping returns the bookkeeping database's name.
func (s Server) bookkeeping() string {
	if s.BookkeepingDatabase == "" {
		return defaultBookkeeping
	}
	return s.BookkeepingDatabase
}

// key identifies a pool: one per endpoint and admin identity. It holds no
// secret, only the secret's name.
// Every plan asks for its pool: the key is built with few allocations.
func (s Server) key() string {
	endpoint := "unix:" + s.Socket
	if s.Host != "" {
		endpoint = "tcp:" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	if s.AdminPassword != nil {
		return endpoint + " as " + s.AdminUser + " (secret " + s.AdminPassword.Secret + ")"
	}
	return endpoint + " as " + s.AdminUser
}

// validate checks the names that reach SQL, adminUser and the
// bookkeeping database. The socket and port are the schema's
// (#MariaDBServer).
func (s Server) validate() error {
	if err := checkUser(s.AdminUser); err != nil {
		return fmt.Errorf("server: adminUser: %w", err)
	}
	if err := checkIdent("server: bookkeepingDatabase", s.bookkeeping()); err != nil {
		return err
	}
	return nil
}

// UnavailableError says that the server could not be reached: it is down,
// restarting, or its socket is missing. The resources that need it fail and
// their dependents are skipped; the next run tries again.
type UnavailableError struct {
	// Server names the endpoint (no secret).
	Server string
	Err    error
}

// Error says which server and why.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("mariadb server %s unavailable (will retry next run): %v", e.Server, e.Err)
}

// Unwrap returns the connection error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Retryable reports true: an unavailable server is worth another try later.
func (e *UnavailableError) Retryable() bool { return true }

// isUnavailable tells connection failures from SQL errors.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1053, // ER_SERVER_SHUTDOWN
			1927, // ER_CONNECTION_KILLED
			1040: // ER_CON_COUNT_ERROR
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.As(err, &ne)
}

// pools holds one *sql.DB per server endpoint, opened on first use and kept
// for every later run, so that a quiet run costs no connection set-up.
type pools struct {
	mu sync.RWMutex
	m  map[string]*conn
	// byID finds the pool of a spec without building its key: every plan
	// asks for its pool.
	byID map[serverID]*conn
}

// serverID is what a pool's key is made of, as a comparable value.
type serverID struct {
	socket, host, adminUser, password string
	port                              int
	hasPassword                       bool
}

func (s Server) id() serverID {
	id := serverID{socket: s.Socket, adminUser: s.AdminUser}
	if s.Host != "" {
		id = serverID{host: s.Host, port: s.Port, adminUser: s.AdminUser}
	}
	if s.AdminPassword != nil {
		id.password, id.hasPassword = s.AdminPassword.Secret, true
	}
	return id
}

// conn is one server's pool and what it needs to (re)connect.
type conn struct {
	key  string
	spec Server
	// cacheKeys are the run-cache keys of the server-wide reads (see
	// observation), built once rather than by every plan.
	cacheKeys struct{ observation, schemata string }
	db        *sql.DB
	log       driverLogger
	// secrets is the resolver of the latest run, used when the pool opens a
	// new connection and needs the admin password.
	secrets atomic.Pointer[resolverBox]
	// sizes are how many entries the last server-wide reads found: the
	// next read sizes its map so at once.
	sizes struct{ accounts, privileges, globalPrivileges, history atomic.Int64 }
	// queries are the privilege reads (see privilegesQuery and
	// compactDBQuery): constants but for tests, which make one fail.
	queries struct {
		privileges, wholeDB string
		compactDB           bool
	}
}

// resolverBox holds a run's resolver, and the run's cache, which tells
// the run's later plans that their resolver is in already.
type resolverBox struct {
	r     reconciler.SecretResolver
	cache *reconciler.Cache
}

// get returns spec's pool, opening it on first use, and makes env's
// resolver the one its new connections use. Every plan asks: a pool
// known by its spec's identity is found under a read lock, and a run
// stores its resolver once.
func (p *pools) get(spec Server, env *reconciler.Env) (*conn, error) {
	id := spec.id()
	p.mu.RLock()
	c := p.byID[id]
	p.mu.RUnlock()
	if c == nil {
		var err error
		if c, err = p.open(spec, id, env); err != nil {
			return nil, err
		}
	}
	if env != nil && env.Secrets != nil {
		if b := c.secrets.Load(); b == nil || env.Cache == nil || b.cache != env.Cache {
			c.secrets.Store(&resolverBox{r: env.Secrets, cache: env.Cache})
		}
	}
	return c, nil
}

// open returns the pool of spec (identity id), opening it unless a spec
// of another identity with the same key opened it.
func (p *pools) open(spec Server, id serverID, env *reconciler.Env) (*conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.byID[id]
	if c == nil {
		c = p.m[spec.key()]
	}
	if c == nil {
		key := spec.key()
		c = &conn{key: key, spec: spec, log: driverLogger{discard}}
		c.cacheKeys.observation, c.cacheKeys.schemata = cacheObservation+key, cacheSchemata+key
		c.queries.privileges, c.queries.wholeDB, c.queries.compactDB = privilegesQuery, databasePrivilegesQuery, true
		if env != nil && env.Log != nil {
			c.log = driverLogger{env.Log.With("mariadb", key)}
		}
		cfg := c.config("")
		if spec.AdminPassword != nil {
			ref := *spec.AdminPassword
			if err := cfg.Apply(mysql.BeforeConnect(func(ctx context.Context, cfg *mysql.Config) error {
				return c.password(ctx, ref, cfg)
			})); err != nil {
				return nil, fmt.Errorf("configure connection to %s: %w", key, err)
			}
		}
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("configure connection to %s: %w", key, err)
		}
		c.db = sql.OpenDB(connector)
		// A run reads privileges with two statements at once (see
		// privileges) beside the plans and applies of other resources:
		// every connection it opened stays open for the next run.
		c.db.SetMaxOpenConns(4)
		c.db.SetMaxIdleConns(4)
		c.db.SetConnMaxIdleTime(10 * time.Minute)
		if p.m == nil {
			p.m, p.byID = map[string]*conn{}, map[serverID]*conn{}
		}
		p.m[key] = c
	}
	if p.byID == nil {
		p.byID = map[serverID]*conn{}
	}
	p.byID[id] = c
	return c, nil
}

// closeAll closes every pool.
func (p *pools) closeAll() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for k, c := range p.m {
		errs = append(errs, c.db.Close())
		delete(p.m, k)
	}
	clear(p.byID)
	return errors.Join(errs...)
}

// config returns the driver configuration for this server (database db,
// "" for none). The admin password is not in it: it is resolved when a
// connection is opened (see password).
func (c *conn) config(db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = c.spec.AdminUser
	cfg.DBName = db
	if c.spec.Host != "" {
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(c.spec.Host, strconv.Itoa(c.spec.Port))
	} else {
		cfg.Net, cfg.Addr = "unix", c.spec.Socket
	}
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 5 * time.Minute
	cfg.WriteTimeout = 30 * time.Second
	cfg.AllowNativePasswords = true
	// A dead pooled connection is noticed before use, not by the query.
	cfg.CheckConnLiveness = true
	cfg.Logger = c.log
	return cfg
}

func (c *conn) password(ctx context.Context, ref reconciler.SecretRef, cfg *mysql.Config) error {
	box := c.secrets.Load()
	if box == nil {
		return fmt.Errorf("resolve admin password (%s): no secret resolver", ref)
	}
	s, err := box.r.Resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("resolve admin password: %w", err)
	}
	cfg.Passwd = string(s.Reveal())
	return nil
}

// wrap turns a connection failure into an *UnavailableError and prefixes
// other errors with what was being done.
func (c *conn) wrap(doing string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w", doing, &UnavailableError{Server: c.key, Err: err})
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// scriptDB opens a short-lived pool with multiStatements on, for running
// migration scripts (trusted CUE content, never built from values) in the
// given database. The caller closes it.
func (c *conn) scriptDB(database string) (*sql.DB, error) {
	cfg := c.config(database)
	cfg.MultiStatements = true
	cfg.ReadTimeout = 0 // a long ALTER TABLE is bounded by the context, not by a socket timeout
	if c.spec.AdminPassword != nil {
		ref := *c.spec.AdminPassword
		if err := cfg.Apply(mysql.BeforeConnect(func(ctx context.Context, cfg *mysql.Config) error {
			return c.password(ctx, ref, cfg)
		})); err != nil {
			return nil, err
		}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	return db, nil
}

var discard = slog.New(slog.DiscardHandler)

// driverLogger sends the driver's own messages (a dead idle connection
// closed) to the run's logger at debug level instead of the process's
// stderr. They never hold a password: the driver does not log its config.
type driverLogger struct{ l *slog.Logger }

// Print implements mysql.Logger.
func (d driverLogger) Print(v ...any) {
	d.l.Debug(strings.TrimSpace(fmt.Sprint(v...)), "component", "mysql driver")
}
