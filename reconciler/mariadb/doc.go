// Package mariadb implements fsgit's MariaDB kinds: mariadb.database,
// mariadb.user, mariadb.grant, mariadb.migration and mariadb.security.
// They read the server
// itself on every run (never a sentinel file or their own status) and
// converge it with the fewest statements.
//
// # Connection
//
// Every resource names its server ([Server]: a unix socket by default, or
// host and port; root with unix_socket authentication by default, or an
// admin account whose password is a secret). One *sql.DB per endpoint is
// opened on first use and reused across runs. A server that cannot be
// reached makes the resources that need it fail with an
// [*UnavailableError]; the engine skips their dependents and the next run
// tries again.
//
// # Observation
//
// Observation is batched per server and run (see observe.go): one read of
// mysql.global_priv for all accounts, one UNION over information_schema's
// global and table privilege views and one of mysql.db (database-level
// privileges, a row per account and database) for all grants, the two at
// once, one of information_schema.SCHEMATA, and one of fsgit's
// declared-grants table when a grant has changes (it only classes
// revokes); per migration resource, two reads. A quiet run over users with
// 4 grants each sends 3 queries (over connections kept from the last run)
// and writes nothing; the number does not grow with the number of users
// (BenchmarkNoopRun_50Users4Grants, which also reports the CPU a run
// costs fsgit and the server).
//
// Names: database and table names may use letters of any script
// (fëature_ß, 特征库), as MariaDB allows, up to 64 characters and none
// beyond U+FFFF; user names are ASCII, up to 80 characters; hosts up to
// 255. They are compared byte for byte, as MariaDB compares them.
//
// Both sides are normalized before the diff: privilege names upper case
// with aliases resolved (REPLICATION CLIENT is BINLOG MONITOR), ALL
// PRIVILEGES expanded to MariaDB 10.11's list for the level (global,
// database, table) on the desired side and compared as sets, host names
// lower case, utf8 read as utf8mb3.
//
// # Passwords
//
// The password is resolved from the node's secrets and hashed locally into
// the authentication string the plugin stores (see authString in password.go):
// mysql_native_password and ed25519 are computed and compared with
// mysql.global_priv, and the server is sent only that string (IDENTIFIED VIA
// plugin USING '...'), so the plaintext never leaves fsgit's memory; it is
// never logged, stored or put in a plan. Another plugin cannot be compared
// and the schema does not accept one.
//
// The admin account must see every account's privileges (root, or an
// account with SELECT on mysql.* and ALL PRIVILEGES WITH GRANT OPTION):
// information_schema shows a lesser account only its own.
//
// # Grants
//
// A mariadb.grant is exact at its level: privileges held there and not
// declared are revoked. A revoke that removes access the CUE declared on
// that resource before (a reviewed narrowing, or the resource leaving the
// catalog) is safe; one that removes access the CUE never declared there
// (granted by hand) is destructive: held as a pending destroy unless the
// resource allows destroy, and only reported in detect mode. fsgit tells
// them apart with the union of privileges it ever declared on each grant,
// kept in `fsgit`.`declared_grants` on the server (the database is the
// server's bookkeepingDatabase, `fsgit` by default) and written only when a
// grant is applied. Privileges of a managed user at levels no grant
// resource declares are not managed.
//
// At the database level MariaDB reads the name in GRANT and REVOKE as a
// LIKE pattern: an underscore in `feature_store_online`.* would also match
// featureXstoreXonline. fsgit escapes _ and % there
// (`feature\_store\_online`.*), reads the escaped form back from mysql.db
// (what information_schema.SCHEMA_PRIVILEGES shows) as the one database it
// names, and revokes a grant on the unescaped pattern (as fsgit wrote it
// before, or as granted by hand) from the account of a grant resource on
// that database: safe for what the CUE declared there, destructive
// otherwise. Table-level grants name their database literally and are
// not escaped.
//
// # Secure installation
//
// mariadb.security ([SecuritySpec]) does what mysql_secure_installation
// does and keeps it true: no anonymous accounts, no test database or the
// grants to everyone on test and test\_%, root only through unix_socket.
//
// # Migrations
//
// See [MigrationSpec] for the bookkeeping table, checksums and how a
// dropped table is noticed and re-created.
//
// # Safety
//
// Values go in placeholders. Account statements (CREATE USER, GRANT, ALTER
// USER) take none, so user, host, database and table names are validated
// against the schema's patterns and quoted with backticks (a backtick
// doubled), which no sql_mode changes (ANSI_QUOTES, NO_BACKSLASH_ESCAPES);
// authentication strings are computed here as hex or base64 and checked as
// such before they are inlined; limits are integers. Only migration scripts
// run with multiStatements, on a short-lived connection of their own.
package mariadb
