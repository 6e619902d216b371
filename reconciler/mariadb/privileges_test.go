package mariadb

import (
	"slices"
	"strings"
	"testing"
)

// TestPrivSet holds the bit set to what the map it replaced did: names
// fsgit knows and names it does not (a newer server's) alike, listed in
// MariaDB's order, and a copy unchanged by what is added to the original.
func TestPrivSet(t *testing.T) {
	var s privSet
	for _, p := range []string{"SHOW VIEW", "SELECT", "ZZ NEW", "SELECT", "AA NEW", "SLAVE MONITOR"} {
		s.add(p)
	}
	if got, want := strings.Join(s.list(), ","), "SELECT,SHOW VIEW,SLAVE MONITOR,AA NEW,ZZ NEW"; got != want {
		t.Fatalf("list %s, want %s", got, want)
	}
	if s.len() != 5 || !s.has("AA NEW") || !s.has("SLAVE MONITOR") || s.has("INSERT") || s.has("MM NEW") {
		t.Fatalf("len %d or membership wrong: %v", s.len(), s)
	}
	c := s
	s.add("BB NEW")
	s.add("INSERT")
	if c.has("BB NEW") || c.has("INSERT") || c.len() != 5 {
		t.Fatalf("the copy changed with the original: %v", c)
	}
	var o privSet
	var in interner
	for _, p := range []string{"SELECT", "ZZ NEW", "DELETE"} {
		o.addBytes([]byte(p), &in)
	}
	if got, want := strings.Join(s.minus(o), ","), "INSERT,SHOW VIEW,SLAVE MONITOR,AA NEW,BB NEW"; got != want {
		t.Fatalf("minus %s, want %s", got, want)
	}
	if got := o.minus(o); got != nil {
		t.Fatalf("o minus o = %v, want nil", got)
	}
	u := o.union(c)
	if got, want := strings.Join(u.list(), ","), "SELECT,DELETE,SHOW VIEW,SLAVE MONITOR,AA NEW,ZZ NEW"; got != want {
		t.Fatalf("union %s, want %s", got, want)
	}
	if o.len() != 3 || o.has("AA NEW") {
		t.Fatalf("union changed its receiver: %v", o)
	}
	// The order is sortPrivileges' for any mix.
	l := u.list()
	sorted := slices.Clone(l)
	slices.Reverse(sorted)
	sortPrivileges(sorted)
	if !slices.Equal(l, sorted) {
		t.Fatalf("list %v, sortPrivileges %v", l, sorted)
	}
}

// TestPrivSetDisplay: the whole level is ALL PRIVILEGES, nothing USAGE,
// one privilege its name, several their list.
func TestPrivSetDisplay(t *testing.T) {
	for _, c := range []struct {
		privs     []string
		db, table string
		want      string
	}{
		{nil, "d", "*", "USAGE"},
		{databasePrivileges, "d", "*", "ALL PRIVILEGES"},
		{databasePrivileges, "*", "*", strings.Join(databasePrivileges, ", ")},
		{append(slices.Clone(tablePrivileges), "NEW ONE"), "d", "t", "ALL PRIVILEGES"},
		{[]string{"SELECT"}, "d", "*", "SELECT"},
		{[]string{"NEW ONE"}, "d", "*", "NEW ONE"},
		{[]string{"INSERT", "SELECT"}, "d", "*", "SELECT, INSERT"},
	} {
		if got := setOf(c.privs).display(c.db, c.table); got != c.want {
			t.Errorf("%v on %s.%s: %q, want %q", c.privs, c.db, c.table, got, c.want)
		}
	}
	if len(globalPrivileges) > 64 {
		t.Fatalf("%d privileges: the later ones have no bit", len(globalPrivileges))
	}
}
