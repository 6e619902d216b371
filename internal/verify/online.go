package verify

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

var identRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`) })

// runOnline upserts the feature's latest value as the application user and
// reads it back.
func runOnline(ctx context.Context, on Online, opts Options) ([]string, error) {
	if !identRE().MatchString(on.Table) || !identRE().MatchString(on.Database) {
		return nil, fmt.Errorf("database %q or table %q is not an identifier", on.Database, on.Table)
	}
	pw, err := opts.Secrets.Resolve(ctx, on.Password)
	if err != nil {
		return nil, fmt.Errorf("resolve the password of %s: %w", on.User, err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = on.User, string(pw.Reveal()), on.Database
	where := on.Socket
	if on.Host != "" {
		port := on.Port
		if port == 0 {
			port = 3306
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(on.Host, strconv.Itoa(port))
		where = cfg.Addr
	} else {
		cfg.Net, cfg.Addr = "unix", on.Socket
	}
	cfg.Timeout = 10 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure the connection: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()

	f := opts.Feature
	value := strconv.FormatFloat(f.Value, 'f', -1, 64)
	res, err := db.ExecContext(ctx,
		"INSERT INTO `"+on.Table+"` (entity_id, feature_name, feature_value) VALUES (?, ?, ?) "+
			"ON DUPLICATE KEY UPDATE feature_value = VALUES(feature_value)",
		f.Entity, f.Name, []byte(value))
	if err != nil {
		return nil, fmt.Errorf("upsert into %s.%s as %s over %s: %w", on.Database, on.Table, on.User, where, err)
	}
	n, _ := res.RowsAffected()
	// MariaDB: 1 = inserted, 2 = updated, 0 = the same value was there.
	what := map[int64]string{0: "unchanged", 1: "inserted", 2: "updated"}[n]

	var got []byte
	var updated string
	err = db.QueryRowContext(ctx,
		"SELECT feature_value, CAST(updated_at AS CHAR) FROM `"+on.Table+"` WHERE entity_id = ? AND feature_name = ?",
		f.Entity, f.Name).Scan(&got, &updated)
	if err != nil {
		return nil, fmt.Errorf("read back %s/%s: %w", f.Entity, f.Name, err)
	}
	if string(got) != value {
		return nil, fmt.Errorf("read back %s/%s = %q, wrote %q", f.Entity, f.Name, got, value)
	}
	return []string{
		fmt.Sprintf("wrote %s/%s = %s (%s) over %s", f.Entity, f.Name, value, what, where),
		fmt.Sprintf("read back %s, updated_at %s", got, updated),
	}, nil
}
