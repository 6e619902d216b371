package mariadb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// MigrationSpec is the spec of a mariadb.migration resource (ID
// mariadb.migration:<database>): versioned SQL scripts for one database,
// each applied once, in order.
//
// # Bookkeeping
//
// What ran is recorded in the database itself, in fsgit's own table
// `fsgit_schema_migrations` (so that it travels with a dump of the
// database): version, name, checksum (sha256 of the script's exact text),
// applied_at, and two columns fsgit uses to notice a table dropped by hand:
// created_tables and changed_tables (JSON lists), and dropped_tables. They
// are computed when the migration runs, by fingerprinting every table of
// the database (columns and indexes, from information_schema) before and
// after the script.
//
// # Every run
//
// The plan reads information_schema.TABLES for the database and the
// bookkeeping table (two queries), then:
//   - a recorded migration whose script changed is an error
//     ([*ChecksumError]), never a re-run: write a new version instead;
//   - a recorded version no longer declared, or a new version lower than
//     the highest applied one, is an error;
//   - a declared version not recorded is pending and runs, in order;
//   - a table that the recorded migrations created (and did not drop
//     since) and that no longer exists was dropped by hand: the migrations
//     that created or changed it run again, in order. That is safe only when
//     everything those migrations created or changed is gone too and they
//     dropped nothing; otherwise the plan fails and says which table is in
//     the way, rather than run a script on a state it was not written for.
//     Rows that migrations inserted are not re-created: fsgit restores
//     schema, not data.
//
// Scripts are trusted CUE content and may hold several statements: they run
// with multiStatements on a short-lived connection of their own, in the
// database. DDL is not transactional in MariaDB: a script that fails half
// way is not recorded, and the error says which migration failed.
type MigrationSpec struct {
	// Database is the database (from the ID).
	Database string `json:"database"`
	// Migrations are applied in version order, each once.
	Migrations []Migration `json:"migrations"`
	Server     Server      `json:"server"`
}

// Migration is one versioned script.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	SQL     string `json:"sql"`
	// SQLSHA256 replaces SQL in the spec the node remembers (see
	// RememberSpec): only PlanDelete, which needs nothing of it, sees it.
	SQLSHA256 string `json:"sqlSha256,omitempty" remembered:"sql"`
}

func (m Migration) checksum() string {
	h := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(h[:])
}

// ChecksumError says that a migration which already ran has a different
// script now. It is never re-run: a change needs a new version.
type ChecksumError struct {
	Database string
	Version  int
	Name     string
	// Recorded and Declared are sha256 hex digests of the script text.
	Recorded, Declared string
}

// Error explains the mismatch and the fix.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("migration %d (%s) of database %s already ran with checksum %.12s, but its sql now has checksum %.12s: an applied migration must not change; add a new version instead",
		e.Version, e.Name, e.Database, e.Recorded, e.Declared)
}

const migrationsTable = "fsgit_schema_migrations"

// migrationsDDL creates the bookkeeping table in database (validated).
func migrationsDDL(database string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(database) + "." + quoteIdent(migrationsTable) + " (" +
		"`version` BIGINT NOT NULL PRIMARY KEY, " +
		"`name` VARCHAR(255) NOT NULL, " +
		"`checksum` CHAR(64) NOT NULL, " +
		"`applied_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, " +
		"`created_tables` TEXT NOT NULL, " +
		"`changed_tables` TEXT NOT NULL, " +
		"`dropped_tables` TEXT NOT NULL" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
}

// MigrationKind implements mariadb.migration.
type MigrationKind struct{ k *Kinds }

var (
	_ reconciler.KindOf[MigrationSpec]        = (*MigrationKind)(nil)
	_ reconciler.SpecPruner[MigrationSpec]    = (*MigrationKind)(nil)
	_ reconciler.SpecTimeouter[MigrationSpec] = (*MigrationKind)(nil)
)

// migrationTimeout bounds one migration resource: an ALTER TABLE on a big
// table takes long, and cutting it off half way is worse than waiting.
const migrationTimeout = 2 * time.Hour

// Timeout gives migrations longer than the engine's default.
func (*MigrationKind) Timeout(*MigrationSpec) time.Duration { return migrationTimeout }

// Kind returns "mariadb.migration".
func (*MigrationKind) Kind() string { return "mariadb.migration" }

// Close closes the MariaDB connection pools the kinds share.
func (k *MigrationKind) Close() error { return k.k.Close() }

// Check checks the spec (no I/O), taking the database from the ID when
// not given.
func (*MigrationKind) Check(r *reconciler.Resource, s *MigrationSpec) error {
	if s.Database == "" {
		s.Database = r.Name()
	}
	if err := s.check(r); err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	return nil
}

func (s *MigrationSpec) check(r *reconciler.Resource) error {
	if s.Database != r.Name() {
		return fmt.Errorf("database %q differs from the ID's %q", s.Database, r.Name())
	}
	if err := checkIdent("database", s.Database); err != nil {
		return err
	}
	if len(s.Migrations) == 0 {
		return errors.New("migrations: empty")
	}
	prev := 0
	for i, m := range s.Migrations {
		if m.Version < 1 {
			return fmt.Errorf("migrations[%d]: version %d: want >= 1", i, m.Version)
		}
		if m.Version <= prev {
			return fmt.Errorf("migrations[%d]: version %d after %d: versions must increase strictly", i, m.Version, prev)
		}
		if strings.TrimSpace(m.Name) == "" || len(m.Name) > 255 {
			return fmt.Errorf("migrations[%d]: name: want 1 to 255 characters", i)
		}
		switch {
		case m.SQLSHA256 != "" && (m.SQL != "" || len(m.SQLSHA256) != 64):
			return fmt.Errorf("migrations[%d]: sqlSha256 is the remembered digest of sql, 64 hex digits, never given with it", i)
		case m.SQLSHA256 == "" && strings.TrimSpace(m.SQL) == "":
			return fmt.Errorf("migrations[%d]: sql: empty", i)
		}
		prev = m.Version
	}
	return s.Server.validate()
}

// PlanDelete: a migration leaving the catalog undoes nothing (its schema
// stays, so does its record), so there is never anything to do.
func (*MigrationKind) PlanDelete(context.Context, *reconciler.Env, *reconciler.Resource, *MigrationSpec) (*reconciler.Plan, error) {
	return &reconciler.Plan{}, nil
}

// record is one row of fsgit_schema_migrations.
type record struct {
	Version                   int
	Name, Checksum            string
	Created, Changed, Dropped []string
}

// migrationState is what one run sees of a database's migrations.
type migrationState struct {
	tables  map[string]bool // every base table and view, bookkeeping excluded
	booked  bool            // fsgit_schema_migrations exists
	records []record        // in version order
}

func (c *conn) migrationState(ctx context.Context, env *reconciler.Env, database string) (*migrationState, error) {
	return once(env, cacheMigrations+c.key+" "+database, func() (*migrationState, error) {
		st := &migrationState{tables: map[string]bool{}}
		rows, err := c.db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", database)
		if err != nil {
			return nil, c.wrap("read tables of "+database, err)
		}
		defer rows.Close()
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				return nil, c.wrap("read tables of "+database, err)
			}
			if t == migrationsTable {
				st.booked = true
				continue
			}
			st.tables[t] = true
		}
		if err := rows.Err(); err != nil {
			return nil, c.wrap("read tables of "+database, err)
		}
		if !st.booked {
			return st, nil
		}
		recs, err := c.db.QueryContext(ctx, "SELECT `version`, `name`, `checksum`, `created_tables`, `changed_tables`, `dropped_tables` FROM "+
			quoteIdent(database)+"."+quoteIdent(migrationsTable)+" ORDER BY `version`")
		if err != nil {
			return nil, c.wrap("read applied migrations of "+database, err)
		}
		defer recs.Close()
		for recs.Next() {
			var r record
			var created, changed, dropped string
			if err := recs.Scan(&r.Version, &r.Name, &r.Checksum, &created, &changed, &dropped); err != nil {
				return nil, c.wrap("read applied migrations of "+database, err)
			}
			for _, f := range []struct {
				s   string
				dst *[]string
			}{{created, &r.Created}, {changed, &r.Changed}, {dropped, &r.Dropped}} {
				if err := json.Unmarshal([]byte(f.s), f.dst); err != nil {
					return nil, fmt.Errorf("read applied migrations of %s: version %d: %w", database, r.Version, err)
				}
			}
			st.records = append(st.records, r)
		}
		if err := recs.Err(); err != nil {
			return nil, c.wrap("read applied migrations of "+database, err)
		}
		return st, nil
	})
}

// touchers maps every table the recorded migrations leave behind to the
// migrations that created or changed it since it was last created.
func touchers(recs []record) map[string][]record {
	out := map[string][]record{}
	for _, r := range recs {
		for _, t := range r.Dropped {
			delete(out, t)
		}
		for _, t := range r.Created {
			out[t] = []record{r}
		}
		for _, t := range r.Changed {
			out[t] = append(out[t], r)
		}
	}
	return out
}

// Plan reads the database's tables and applied migrations and plans the
// pending ones and the re-creation of tables dropped by hand.
func (k *MigrationKind) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *MigrationSpec) (*reconciler.Plan, error) {
	for _, m := range s.Migrations {
		if m.SQLSHA256 != "" {
			return nil, fmt.Errorf("%s: a remembered spec (sqlSha256) cannot be applied", r.ID)
		}
	}
	c, err := k.k.pools.get(s.Server, env)
	if err != nil {
		return nil, err
	}
	st, err := c.migrationState(ctx, env, s.Database)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID, err)
	}
	declared := map[int]Migration{}
	for _, m := range s.Migrations {
		declared[m.Version] = m
	}
	recorded := map[int]record{}
	maxApplied := 0
	var applied []string
	for _, rec := range st.records {
		recorded[rec.Version] = rec
		maxApplied = rec.Version
		applied = append(applied, strconv.Itoa(rec.Version))
		m, ok := declared[rec.Version]
		if !ok {
			return nil, fmt.Errorf("%s: migration %d (%s) is recorded as applied but no longer declared: applied migrations must stay in the list", r.ID, rec.Version, rec.Name)
		}
		if sum := m.checksum(); sum != rec.Checksum {
			return nil, fmt.Errorf("%s: %w", r.ID, &ChecksumError{Database: s.Database, Version: m.Version, Name: m.Name, Recorded: rec.Checksum, Declared: sum})
		}
	}

	p := &reconciler.Plan{Observed: map[string]string{"applied": strings.Join(applied, ",")}}
	tch := touchers(st.records)
	expected := make([]string, 0, len(tch))
	for t := range tch {
		expected = append(expected, t)
	}
	sort.Strings(expected)
	p.Observed["tables"] = strings.Join(expected, ",")

	// Tables dropped by hand, and the migrations that re-create them.
	rerun := map[int]bool{}
	for _, t := range expected {
		if st.tables[t] {
			continue
		}
		var by []string
		for _, rec := range tch[t] {
			if err := rerunnable(rec, st.tables); err != nil {
				return nil, fmt.Errorf("%s: table %s is missing and cannot be re-created by migration %d (%s): %w", r.ID, t, rec.Version, rec.Name, err)
			}
			rerun[rec.Version] = true
			by = append(by, fmt.Sprintf("%d (%s)", rec.Version, rec.Name))
		}
		p.Changes = append(p.Changes, reconciler.Change{Field: "table " + t, Before: "missing", After: "re-created by migration " + strings.Join(by, ", ")})
	}

	var run []Migration
	for _, m := range s.Migrations {
		if _, done := recorded[m.Version]; done {
			if rerun[m.Version] {
				run = append(run, m)
			}
			continue
		}
		if m.Version < maxApplied {
			return nil, fmt.Errorf("%s: migration %d (%s) is new but lower than the highest applied version %d: add migrations after the last one", r.ID, m.Version, m.Name, maxApplied)
		}
		run = append(run, m)
		p.Changes = append(p.Changes, reconciler.Change{Field: fmt.Sprintf("migration %d", m.Version), Before: "pending", After: "apply " + m.Name})
	}
	if len(run) == 0 {
		return p, nil
	}
	p.Action = reconciler.ActionUpdate
	if len(st.records) == 0 {
		p.Action = reconciler.ActionCreate
	}
	booked := st.booked
	p.Apply = func(ctx context.Context) error {
		defer c.forgetMigrations(env, s.Database)
		// A script may change accounts and databases too.
		defer c.forget(env)
		progress := env.StartProgress(r.ID, "migrations of "+s.Database)
		defer progress.Finish()
		return c.runMigrations(ctx, r.ID, s.Database, run, recorded, booked, progress)
	}
	return p, nil
}

// rerunnable says whether a recorded migration can run again: everything
// it created or changed must be gone, and it must have dropped nothing.
func rerunnable(rec record, tables map[string]bool) error {
	if len(rec.Dropped) > 0 {
		return fmt.Errorf("it dropped %s", strings.Join(rec.Dropped, ", "))
	}
	for _, t := range append(append([]string{}, rec.Created...), rec.Changed...) {
		if tables[t] {
			return fmt.Errorf("it also created or changed table %s, which still exists (restore the missing table by hand, or drop %s too)", t, t)
		}
	}
	return nil
}

// runMigrations runs the scripts in order, each followed by its record
// (an insert for a new one; a re-run keeps its record), and reports the
// one in hand to progress.
func (c *conn) runMigrations(ctx context.Context, id reconciler.ID, database string, run []Migration, recorded map[int]record, booked bool, progress *reconciler.Progress) error {
	script, err := c.scriptDB(database)
	if err != nil {
		return fmt.Errorf("%s: open script connection: %w", id, err)
	}
	defer script.Close()
	if !booked {
		if err := c.exec(ctx, id, migrationsDDL(database)); err != nil {
			return err
		}
	}
	for i, m := range run {
		progress.Update(int64(i), int64(len(run)), reconciler.UnitSteps, fmt.Sprintf("migration %d (%s)", m.Version, m.Name))
		before, err := c.fingerprints(ctx, database)
		if err != nil {
			return fmt.Errorf("%s: migration %d: %w", id, m.Version, err)
		}
		if _, err := script.ExecContext(ctx, m.SQL); err != nil {
			return c.wrap(fmt.Sprintf("%s: run migration %d (%s)", id, m.Version, m.Name), err)
		}
		after, err := c.fingerprints(ctx, database)
		if err != nil {
			return fmt.Errorf("%s: migration %d: %w", id, m.Version, err)
		}
		if _, again := recorded[m.Version]; again {
			continue
		}
		var created, changed, dropped []string
		for t, fp := range after {
			old, ok := before[t]
			switch {
			case !ok:
				created = append(created, t)
			case old != fp:
				changed = append(changed, t)
			}
		}
		for t := range before {
			if _, ok := after[t]; !ok {
				dropped = append(dropped, t)
			}
		}
		err = c.exec(ctx, id, "INSERT INTO "+quoteIdent(database)+"."+quoteIdent(migrationsTable)+
			" (`version`, `name`, `checksum`, `created_tables`, `changed_tables`, `dropped_tables`) VALUES (?, ?, ?, ?, ?, ?)",
			m.Version, m.Name, m.checksum(), jsonList(created), jsonList(changed), jsonList(dropped))
		if err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
	}
	return nil
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	sort.Strings(l)
	b, _ := json.Marshal(l)
	return string(b)
}

// fingerprints hashes each table's columns and indexes, so that a
// migration's effect on the schema can be told: created, changed, dropped.
func (c *conn) fingerprints(ctx context.Context, database string) (map[string]string, error) {
	out := map[string]string{}
	acc := map[string][]string{}
	for _, q := range []string{
		"SELECT TABLE_NAME, CONCAT_WS('|', TABLE_TYPE, ENGINE) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
		"SELECT TABLE_NAME, CONCAT_WS('|', ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, 'NULL'), EXTRA, COLLATION_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
		"SELECT TABLE_NAME, CONCAT_WS('|', INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
	} {
		if err := c.collect(ctx, q, database, acc); err != nil {
			return nil, c.wrap("fingerprint tables of "+database, err)
		}
	}
	for t, parts := range acc {
		if t == migrationsTable {
			continue
		}
		h := sha256.Sum256([]byte(strings.Join(parts, "\n")))
		out[t] = hex.EncodeToString(h[:])
	}
	return out, nil
}

func (c *conn) collect(ctx context.Context, q, database string, acc map[string][]string) error {
	rows, err := c.db.QueryContext(ctx, q, database)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var v sql.NullString
		if err := rows.Scan(&t, &v); err != nil {
			return err
		}
		acc[t] = append(acc[t], v.String)
	}
	return rows.Err()
}
