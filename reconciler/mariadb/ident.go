package mariadb

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// The schema's patterns, checked again here because a spec can reach a
// kind without the schema (tests, a hand-written catalog) and because these
// are the only strings that go into SQL text rather than placeholders.
var (
	// identRE is #MariaDBName: database and table names. Letters of any
	// script are accepted, as MariaDB accepts them (fëature_ß, 特征库).
	identRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}_][\p{L}\p{M}\p{N}_$]*$`) })
	// userRE is a MariaDB user name as the schema accepts it.
	userRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })
	// hostRE is a host part: a name, an address (v4, v6), a netmask, or a
	// pattern with % and _.
	hostRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.%:/-]+$`) })
	// charsetRE covers character set and collation names.
	charsetRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_]{1,64}$`) })
)

// MariaDB's limits, in characters (schema/types.cue has the same).
const (
	// maxNameLen is the limit for database, table and column names.
	maxNameLen = 64
	// maxUserLen is the limit for user names in MariaDB 10.5 and older
	// (10.6 and later take 128); fsgit keeps it for every 10.x.
	maxUserLen = 80
	// maxHostLen is the limit for the host part of an account.
	maxHostLen = 255
)

func checkIdent(field, v string) error {
	if n := utf8.RuneCountInString(v); n > maxNameLen {
		return fmt.Errorf("%s %q is longer than %d characters, MariaDB's limit (it has %d)", field, v, maxNameLen, n)
	}
	for _, r := range v {
		if r > 0xFFFF {
			return fmt.Errorf("%s %q has the character %U, beyond U+FFFF, which MariaDB refuses in a name", field, v, r)
		}
	}
	if !identOK(v) {
		return fmt.Errorf("%s %q is not a valid name: a letter or _, then letters, digits, _ or $ (%s)", field, v, identRE())
	}
	return nil
}

func checkUser(v string) error {
	if n := len(v); n > maxUserLen {
		return fmt.Errorf("user %q is longer than %d characters, MariaDB's limit for user names (it has %d)", v, maxUserLen, n)
	}
	if !asciiOK(v, userByte) {
		return fmt.Errorf("user %q is not a valid user name: ASCII letters, digits, _, . and - (%s)", v, userRE())
	}
	return nil
}

func checkHost(v string) error {
	if n := len(v); n > maxHostLen {
		return fmt.Errorf("host %q is longer than %d characters, MariaDB's limit for hosts (it has %d)", v, maxHostLen, n)
	}
	if !asciiOK(v, hostByte) {
		return fmt.Errorf("host %q is not a valid host or pattern (%s)", v, hostRE())
	}
	return nil
}

// identOK reports whether v matches identRE, without the regexp for an
// ASCII name (every name a catalog of thousands of grants is likely to
// have): the only ASCII letters are A-Z and a-z, the only ASCII digits 0-9,
// and no ASCII character is a mark.
func identOK(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= utf8.RuneSelf:
			return utf8.ValidString(v) && identRE().MatchString(v)
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '$'):
		default:
			return false
		}
	}
	return v != ""
}

// userByte and hostByte are the bytes userRE and hostRE accept.
func userByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func hostByte(c byte) bool { return userByte(c) || c == '%' || c == ':' || c == '/' }

// asciiOK reports whether v is one or more bytes that ok accepts: userRE
// or hostRE, without the regexp.
func asciiOK(v string, ok func(byte) bool) bool {
	for i := 0; i < len(v); i++ {
		if !ok(v[i]) {
			return false
		}
	}
	return v != ""
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
	if !strings.ContainsAny(p, `\_%`) {
		return p, false
	}
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
var authLiteralRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9*+/=]*$`) })

func authLiteral(s string) (string, error) {
	if !authLiteralRE().MatchString(s) {
		return "", fmt.Errorf("authentication string has unexpected characters")
	}
	return "'" + s + "'", nil
}
