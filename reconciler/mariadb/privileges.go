package mariadb

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// The privileges MariaDB 10.11 stores at each level, in the order and with
// the names information_schema.*_PRIVILEGES reports them. "ALL PRIVILEGES"
// at a level means exactly its list; TestPrivilegeLists checks these
// against the real server, so a server version that adds a privilege fails
// the test rather than making every run noisy.
var (
	globalPrivileges = []string{
		"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD",
		"SHUTDOWN", "PROCESS", "FILE", "REFERENCES", "INDEX", "ALTER",
		"SHOW DATABASES", "SUPER", "CREATE TEMPORARY TABLES", "LOCK TABLES",
		"EXECUTE", "REPLICATION SLAVE", "BINLOG MONITOR", "CREATE VIEW",
		"SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT",
		"TRIGGER", "CREATE TABLESPACE", "DELETE HISTORY", "SET USER",
		"FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN",
		"REPLICATION SLAVE ADMIN", "REPLICATION MASTER ADMIN", "BINLOG ADMIN",
		"BINLOG REPLAY", "SLAVE MONITOR",
	}
	databasePrivileges = []string{
		"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES",
		"INDEX", "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE",
		"CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT",
		"TRIGGER", "DELETE HISTORY",
	}
	tablePrivileges = []string{
		"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES",
		"INDEX", "ALTER", "CREATE VIEW", "SHOW VIEW", "TRIGGER", "DELETE HISTORY",
	}
)

// privilegeAliases maps the other spellings MariaDB accepts to the name it
// reports.
var privilegeAliases = map[string]string{
	"ALL":                       "ALL PRIVILEGES",
	"REPLICATION CLIENT":        "BINLOG MONITOR",
	"REPLICA MONITOR":           "SLAVE MONITOR",
	"REPLICATION REPLICA":       "REPLICATION SLAVE",
	"REPLICATION REPLICA ADMIN": "REPLICATION SLAVE ADMIN",
	"READ ONLY ADMIN":           "READ_ONLY ADMIN",
}

// levelPrivileges returns the privilege list of the level of database and
// table ("*" for global or whole database).
func levelPrivileges(database, table string) []string {
	switch {
	case database == "*":
		return globalPrivileges
	case table == "*":
		return databasePrivileges
	default:
		return tablePrivileges
	}
}

func levelName(database, table string) string {
	switch {
	case database == "*":
		return "global"
	case table == "*":
		return "database"
	default:
		return "table"
	}
}

// privSet is a normalized set of privilege names. The privileges MariaDB
// 10.11 knows (globalPrivileges, which every level's list is part of) are
// bits, by their rank: a run reads thousands of these sets, and compares,
// lists and displays each, without a map or a sort. A name it does not
// know (a newer server's privilege, read from the server) is kept by name.
// A privSet is a value: a copy does not share what add changes.
type privSet struct {
	bits uint64
	// other holds the names that have no bit, sorted, without
	// duplicates. It is never appended to in place.
	other []string
}

// privBit returns the bit of a privilege fsgit knows, 0 and false for
// another.
func privBit(name string) (uint64, bool) {
	r, ok := privilegeRank[name]
	if !ok || r >= 64 {
		return 0, false
	}
	return 1 << r, true
}

// add adds name to the set.
func (s *privSet) add(name string) {
	if b, ok := privBit(name); ok {
		s.bits |= b
		return
	}
	i, found := slices.BinarySearch(s.other, name)
	if !found {
		s.other = slices.Insert(slices.Clip(s.other), i, name)
	}
}

// addBytes adds the privilege named b, taking a string for a name fsgit
// does not know from in.
func (s *privSet) addBytes(b []byte, in *interner) {
	if r, ok := privilegeRank[string(b)]; ok && r < 64 {
		s.bits |= 1 << r
		return
	}
	s.add(in.str(b))
}

// has reports whether name is in the set.
func (s privSet) has(name string) bool {
	if b, ok := privBit(name); ok {
		return s.bits&b != 0
	}
	_, found := slices.BinarySearch(s.other, name)
	return found
}

// len returns the number of privileges in the set.
func (s privSet) len() int { return bits.OnesCount64(s.bits) + len(s.other) }

// union returns the privileges in s or o.
func (s privSet) union(o privSet) privSet {
	u := privSet{bits: s.bits | o.bits, other: s.other}
	for _, p := range o.other {
		u.add(p)
	}
	return u
}

// isAll reports whether s holds every privilege of the level.
func (s privSet) isAll(database, table string) bool {
	m := levelMasks[levelName(database, table)]
	return s.bits&m == m
}

// minus returns the privileges of s not in o, in the level's order.
func (s privSet) minus(o privSet) []string {
	d := privSet{bits: s.bits &^ o.bits}
	for _, p := range s.other {
		if !o.has(p) {
			d.other = append(d.other, p)
		}
	}
	if d.len() == 0 {
		return nil
	}
	return d.list()
}

// list returns the set's privileges in MariaDB's order (see
// sortPrivileges).
func (s privSet) list() []string {
	out := make([]string, 0, s.len())
	for b := s.bits; b != 0; b &= b - 1 {
		out = append(out, globalPrivileges[bits.TrailingZeros64(b)])
	}
	return append(out, s.other...)
}

// display renders the set compactly: "ALL PRIVILEGES" when it is the whole
// level, "USAGE" when empty.
func (s privSet) display(database, table string) string {
	switch {
	case s.len() == 0:
		return "USAGE"
	case s.isAll(database, table):
		return "ALL PRIVILEGES"
	case s.len() == 1 && len(s.other) == 0:
		return globalPrivileges[bits.TrailingZeros64(s.bits)]
	}
	return strings.Join(s.list(), ", ")
}

// String lists the set, for test failures.
func (s privSet) String() string { return "[" + strings.Join(s.list(), " ") + "]" }

// levelMasks holds each level's privileges as bits, by level name.
var levelMasks = map[string]uint64{
	"global":   setOf(globalPrivileges).bits,
	"database": setOf(databasePrivileges).bits,
	"table":    setOf(tablePrivileges).bits,
}

// knownAt reports whether p is a privilege of the level whose mask is
// level.
func knownAt(level uint64, p string) bool {
	b, ok := privBit(p)
	return ok && level&b != 0
}

// setOf returns the set of the names in l.
func setOf(l []string) privSet {
	var s privSet
	for _, p := range l {
		s.add(p)
	}
	return s
}

// normalizePrivileges turns the CUE list into the set MariaDB would report
// for that level: upper case, single spaces, aliases resolved, ALL
// PRIVILEGES expanded to the level's list, USAGE dropped. It reports
// whether ALL was asked for (so that GRANT says ALL PRIVILEGES) and
// rejects names that do not exist at the level.
func normalizePrivileges(list []string, database, table string) (privSet, bool, error) {
	valid := levelPrivileges(database, table)
	known := levelMasks[levelName(database, table)]
	var set privSet
	all := false
	for _, raw := range list {
		p := strings.Join(strings.Fields(strings.ToUpper(raw)), " ")
		if a, ok := privilegeAliases[p]; ok {
			p = a
		}
		switch {
		case p == "ALL PRIVILEGES":
			all = true
			for _, v := range valid {
				set.add(v)
			}
		case p == "USAGE":
		case p == "GRANT OPTION":
			return privSet{}, false, fmt.Errorf("privilege GRANT OPTION: use grantOption: true")
		case knownAt(known, p):
			set.add(p)
		default:
			return privSet{}, false, fmt.Errorf("privilege %q does not exist at the %s level", raw, levelName(database, table))
		}
	}
	return set, all, nil
}

// privilegeRank orders privileges as MariaDB lists them.
var privilegeRank = func() map[string]int {
	m := make(map[string]int, len(globalPrivileges))
	for i, p := range globalPrivileges {
		m[p] = i
	}
	return m
}()

func sortPrivileges(l []string) {
	sort.Slice(l, func(i, j int) bool {
		ri, iok := privilegeRank[l[i]]
		rj, jok := privilegeRank[l[j]]
		if iok && jok {
			return ri < rj
		}
		if iok != jok {
			return iok
		}
		return l[i] < l[j]
	})
}
