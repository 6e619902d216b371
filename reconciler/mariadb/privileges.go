package mariadb

import (
	"fmt"
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

// privSet is a normalized set of privilege names.
type privSet map[string]bool

// normalizePrivileges turns the CUE list into the set MariaDB would report
// for that level: upper case, single spaces, aliases resolved, ALL
// PRIVILEGES expanded to the level's list, USAGE dropped. It reports
// whether ALL was asked for (so that GRANT says ALL PRIVILEGES) and
// rejects names that do not exist at the level.
func normalizePrivileges(list []string, database, table string) (privSet, bool, error) {
	valid := levelPrivileges(database, table)
	known := levelSets[levelName(database, table)]
	set := privSet{}
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
				set[v] = true
			}
		case p == "USAGE":
		case p == "GRANT OPTION":
			return nil, false, fmt.Errorf("privilege GRANT OPTION: use grantOption: true")
		case known[p]:
			set[p] = true
		default:
			return nil, false, fmt.Errorf("privilege %q does not exist at the %s level", raw, levelName(database, table))
		}
	}
	return set, all, nil
}

// isAll reports whether s holds every privilege of the level.
func (s privSet) isAll(database, table string) bool {
	for _, p := range levelPrivileges(database, table) {
		if !s[p] {
			return false
		}
	}
	return true
}

// minus returns the privileges of s not in o, in the level's order.
func (s privSet) minus(o privSet) []string {
	var out []string
	for p := range s {
		if !o[p] {
			out = append(out, p)
		}
	}
	sortPrivileges(out)
	return out
}

// list returns the set's privileges in a stable order.
func (s privSet) list() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sortPrivileges(out)
	return out
}

// display renders the set compactly: "ALL PRIVILEGES" when it is the whole
// level, "USAGE" when empty.
func (s privSet) display(database, table string) string {
	if len(s) == 0 {
		return "USAGE"
	}
	if s.isAll(database, table) {
		return "ALL PRIVILEGES"
	}
	return strings.Join(s.list(), ", ")
}

// levelSets holds each level's privileges as a set, by level name.
var levelSets = map[string]privSet{
	"global":   setOf(globalPrivileges),
	"database": setOf(databasePrivileges),
	"table":    setOf(tablePrivileges),
}

func setOf(l []string) privSet {
	s := make(privSet, len(l))
	for _, p := range l {
		s[p] = true
	}
	return s
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
