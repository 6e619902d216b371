package mariadb

import (
	"fmt"
	"regexp"
	"strings"
)

// The schema's patterns, checked again here because a spec can reach a
// kind without the schema (tests, a hand-written catalog) and because these
// are the only strings that go into SQL text rather than placeholders.
var (
	// identRE is #SQLIdent: database and table names.
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`)
	// userRE is a MariaDB user name as the schema accepts it.
	userRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,80}$`)
	// hostRE is a host part: a name, an address (v4, v6), a netmask, or a
	// pattern with % and _.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9_.%:/-]{1,255}$`)
	// charsetRE covers character set and collation names.
	charsetRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

func checkIdent(field, v string) error {
	if !identRE.MatchString(v) {
		return fmt.Errorf("%s %q is not a valid identifier (%s)", field, v, identRE)
	}
	return nil
}

func checkUser(v string) error {
	if !userRE.MatchString(v) {
		return fmt.Errorf("user %q is not a valid user name (%s)", v, userRE)
	}
	return nil
}

func checkHost(v string) error {
	if !hostRE.MatchString(v) {
		return fmt.Errorf("host %q is not a valid host or pattern (%s)", v, hostRE)
	}
	return nil
}

// quoteIdent quotes a name with backticks, doubling any backtick inside, as
// MariaDB reads it under every sql_mode (ANSI_QUOTES changes double quotes,
// NO_BACKSLASH_ESCAPES changes string literals; neither touches backticks).
// Names are validated before they get here; quoting is the second wall.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// account renders user@host for account statements (CREATE USER, GRANT),
// which take no placeholders: both parts are quoted as identifiers, which
// MariaDB accepts for account names.
func account(user, host string) string {
	return quoteIdent(user) + "@" + quoteIdent(host)
}

// level renders the object of a GRANT or REVOKE: *.*, `db`.* or
// `db`.`table`. At the database level MariaDB reads the name as a LIKE
// pattern, in which _ and % match any character: the name is escaped
// (`feature\_store\_online`.*) so that the grant is on that database
// only. At the table level the name is literal and is not escaped.
func level(database, table string) string {
	if database == "*" {
		return "*.*"
	}
	if table == "*" {
		return quoteIdent(escapeDBPattern(database)) + ".*"
	}
	return quoteIdent(database) + "." + quoteIdent(table)
}

// escapeDBPattern turns a database name into the pattern of a
// database-level grant that matches that name only: \, _ and % get a
// backslash. MariaDB stores the escaped form (mysql.db.Db,
// information_schema.SCHEMA_PRIVILEGES) and SHOW GRANTS prints it.
func escapeDBPattern(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == '\\' || r == '_' || r == '%' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// parseDBPattern reads the database of a database-level grant as MariaDB
// stores it. A pattern whose _ and % are all escaped names one database:
// name is that database and wildcard is false. Otherwise the grant matches
// every database the pattern does (wildcard true) and name is the pattern
// as stored.
func parseDBPattern(p string) (name string, wildcard bool) {
	var b strings.Builder
	esc := false
	for _, r := range p {
		switch {
		case esc:
			esc = false
		case r == '\\':
			esc = true
			continue
		case r == '_' || r == '%':
			return p, true
		}
		b.WriteRune(r)
	}
	if esc {
		// A trailing backslash stands for itself.
		b.WriteByte('\\')
	}
	return b.String(), false
}

// authLiteralRE is what an authentication string computed by fsgit looks
// like (hex with a '*', or base64): it is inlined as a string literal
// because USING takes no placeholder, so it must hold no quote or
// backslash.
var authLiteralRE = regexp.MustCompile(`^[A-Za-z0-9*+/=]*$`)

func authLiteral(s string) (string, error) {
	if !authLiteralRE.MatchString(s) {
		return "", fmt.Errorf("authentication string has unexpected characters")
	}
	return "'" + s + "'", nil
}
