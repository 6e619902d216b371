package invariants

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
)

// mysqld is a MariaDB server a node declares: a file with a [mysqld]
// section (the mariadb_server profile's server.cnf, or the site's own).
type mysqld struct {
	node    string
	id      reconciler.ID
	bind    string // "" when not set: MariaDB listens on every address
	port    int
	socket  string
	skipNet bool
}

// mysqldSections are the option groups the server reads.
var mysqldSections = map[string]bool{"mysqld": true, "server": true, "mariadb": true, "client-server": true}

// servers returns the MariaDB servers of a node, by the file that
// configures them.
func servers(n *Node) []mysqld {
	var out []mysqld
	for i := range n.Catalog.Resources {
		r := &n.Catalog.Resources[i]
		if r.Kind() != "file" {
			continue
		}
		var spec struct {
			Content string `json:"content"`
			Ensure  string `json:"ensure"`
		}
		if json.Unmarshal(r.Spec, &spec) != nil || spec.Ensure == "absent" || !strings.Contains(spec.Content, "[mysqld]") {
			continue
		}
		m := mysqld{node: n.Name, id: r.ID, port: 3306, socket: "/run/mysqld/mysqld.sock"}
		section := ""
		for _, line := range strings.Split(spec.Content, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if line[0] == '[' {
				section = strings.Trim(line, "[]")
				continue
			}
			if !mysqldSections[section] {
				continue
			}
			k, v, _ := strings.Cut(line, "=")
			k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			switch k {
			case "bind-address":
				m.bind = v
			case "port":
				if p, err := strconv.Atoi(v); err == nil {
					m.port = p
				}
			case "socket":
				m.socket = v
			case "skip-networking":
				m.skipNet = v == "" || v == "1" || v == "ON" || v == "on" || v == "true"
			}
		}
		out = append(out, m)
	}
	return out
}

// admitsRemote says whether a bind address accepts connections from other
// machines.
func admitsRemote(bind string) bool {
	switch strings.ToLower(bind) {
	case "127.0.0.1", "::1", "localhost":
		return false
	}
	if ip := net.ParseIP(bind); ip != nil && ip.IsLoopback() {
		return false
	}
	return true
}

// serverRef is how a mariadb.* resource reaches its server.
type serverRef struct {
	Socket string `json:"socket"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
}

// target is the server an endpoint leads to.
type target struct {
	node     string
	server   *mysqld
	external bool
}

// findServer resolves an endpoint of node from (host "" for the local
// socket) to a MariaDB server of the site, reporting what does not
// resolve. side is the user of the endpoint; field names the endpoint in
// messages. ok is false when a finding was added.
func (c *checker) findServer(from string, side Side, what string, ref serverRef) (target, bool) {
	if ref.Host == "" {
		for _, m := range c.serversOf(c.nodes[from]) {
			if m.socket == ref.Socket {
				return target{node: from, server: &m}, true
			}
		}
		if _, ext := c.in.Config.External[ref.Socket]; ext {
			return target{external: true}, true
		}
		srv := c.serversOf(c.nodes[from])
		if len(srv) == 0 {
			c.add(CheckEndpoint, side, c.nodeSide(from), "%s connects to the MariaDB socket %s, but node %s declares no MariaDB server (no file with a [mysqld] section; %s): declare one, or mark %s external in invariants.external", what, ref.Socket, from, where(c.nodeSide(from)), ref.Socket)
			return target{}, false
		}
		other := c.serverSide(srv[0], "socket")
		c.add(CheckEndpoint, side, other, "%s connects to the MariaDB socket %s, but the server of node %s listens on socket %s (%s)", what, ref.Socket, from, srv[0].socket, where(other))
		return target{}, false
	}
	r, ok := c.resolve(ref.Host, from)
	if !ok {
		c.add(CheckEndpoint, side, c.nodeSide(from), "%s connects to host %s, which is no node of the site (%s) and is not marked external in invariants.external", what, ref.Host, c.knownHosts())
		return target{}, false
	}
	if r.external {
		return target{external: true}, true
	}
	srv := c.serversOf(c.nodes[r.node])
	if len(srv) == 0 {
		c.add(CheckEndpoint, side, c.nodeSide(r.node), "%s connects to %s:%d, which is node %s, but node %s declares no MariaDB server (no file with a [mysqld] section; %s)", what, ref.Host, ref.Port, r.node, r.node, where(c.nodeSide(r.node)))
		return target{}, false
	}
	var m *mysqld
	for i := range srv {
		if srv[i].port == ref.Port {
			m = &srv[i]
		}
	}
	if m == nil {
		side.Pos = c.best(c.nodes[from].Where.Data("iceberg", "db", "port"), side.Pos)
		other := c.serverSide(srv[0], "port")
		c.add(CheckMariaDBListen, side, other, "%s connects to %s:%d, but the MariaDB server of node %s listens on port %d (%s)", what, ref.Host, ref.Port, r.node, srv[0].port, where(other))
		return target{}, false
	}
	if r.node != from {
		// Where the server is costs CUE lookups: only a finding needs it.
		if m.skipNet {
			other := c.serverSide(*m, "bindAddress")
			c.add(CheckMariaDBListen, side, other, "%s connects to node %s over TCP, but its MariaDB server has skip-networking (%s)", what, r.node, where(other))
			return target{}, false
		}
		if !admitsRemote(m.bind) {
			other := c.serverSide(*m, "bindAddress")
			c.add(CheckMariaDBListen, side, other, "%s connects from node %s to node %s over TCP, but that MariaDB server binds %s, which admits no other machine (%s): set its bindAddress to 0.0.0.0 or the node's address", what, from, r.node, m.bind, where(other))
			return target{}, false
		}
	}
	return target{node: r.node, server: m}, true
}

// serverSide is a MariaDB server as a side of a finding, positioned at
// the first of the mariadb data fields given that the site sets, else at
// the node.
func (c *checker) serverSide(m mysqld, fields ...string) Side {
	n := c.nodes[m.node]
	var cands []string
	for _, f := range fields {
		cands = append(cands, n.Where.Data("mariadb", f))
	}
	cands = append(cands, n.pos(), n.Where.Resource(m.id, "content"))
	return Side{Node: m.node, Resource: m.id, Pos: c.best(cands...)}
}

// mariadbEndpoints checks that every mariadb.* resource reaches a server
// of the site (its socket, or host and port).
func (c *checker) mariadbEndpoints() {
	type group struct {
		first reconciler.ID
		n     int
	}
	for _, name := range c.order {
		n := c.nodes[name]
		seen := map[serverRef]*group{}
		var order []serverRef
		for i := range n.Catalog.Resources {
			r := &n.Catalog.Resources[i]
			if !strings.HasPrefix(r.Kind(), "mariadb.") {
				continue
			}
			var spec struct {
				Server serverRef `json:"server"`
			}
			if json.Unmarshal(r.Spec, &spec) != nil {
				continue
			}
			ref := spec.Server
			if ref.Host != "" {
				ref.Socket = ""
			}
			if g := seen[ref]; g != nil {
				g.n++
				continue
			}
			seen[ref] = &group{first: r.ID, n: 1}
			order = append(order, ref)
		}
		for _, ref := range order {
			g := seen[ref]
			field := "socket"
			if ref.Host != "" {
				field = "host"
			}
			first := g.first
			side := Side{Node: name, Resource: first, at: func() string {
				return c.best(n.Where.Data("mariadb", field), n.Where.Resource(first, "server", field))
			}}
			what := string(g.first)
			if g.n > 1 {
				what = fmt.Sprintf("%s (and %d more resources with the same server)", g.first, g.n-1)
			}
			c.findServer(name, side, what, ref)
		}
	}
}

// consumer is a client of the Iceberg JDBC catalog: fsgit's own iceberg.*
// resources, or a JDBC URL in a file (Spark's spark-defaults.conf).
type consumer struct {
	node     string
	id       reconciler.ID
	what     string
	ref      serverRef
	database string
	user     string
	secret   string
	// fields name where each value is, in the resource and in the data.
	pos func(field string) string
}

// consumers lists the catalog's clients of every node, one per node,
// resource kind family and endpoint.
func (c *checker) consumers() []consumer {
	var out []consumer
	for _, name := range c.order {
		n := c.nodes[name]
		seen := map[string]bool{}
		for i := range n.Catalog.Resources {
			r := &n.Catalog.Resources[i]
			switch r.Kind() {
			case "iceberg.namespace", "iceberg.table":
				var spec struct {
					Catalog struct {
						Name string `json:"name"`
						DB   struct {
							serverRef
							Database string `json:"database"`
							User     string `json:"user"`
							Password struct {
								Secret string `json:"secret"`
							} `json:"password"`
						} `json:"db"`
					} `json:"catalog"`
				}
				if json.Unmarshal(r.Spec, &spec) != nil {
					continue
				}
				db := spec.Catalog.DB
				k := fmt.Sprintf("iceberg\x00%v\x00%s\x00%s\x00%s", db.serverRef, db.Database, db.User, db.Password.Secret)
				if seen[k] {
					continue
				}
				seen[k] = true
				ref := db.serverRef
				if ref.Host != "" {
					ref.Socket = ""
				}
				id := r.ID
				out = append(out, consumer{
					node: name, id: id, what: fmt.Sprintf("the Iceberg catalog %s", spec.Catalog.Name), ref: ref,
					database: db.Database, user: db.User, secret: db.Password.Secret,
					pos: func(field string) string {
						return c.best(n.Where.Data("iceberg", "db", field), n.Where.Resource(id, "catalog", "db", field), n.pos())
					},
				})
			case "file":
				out = append(out, jdbcConsumers(c, n, r)...)
			}
		}
	}
	return out
}

// jdbcURL matches a MariaDB or MySQL JDBC URL.
var jdbcURL = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`jdbc:(mariadb|mysql)://[^\s]+`) })

// secretPlaceholder matches a file's {{secret:KEY}}.
var secretPlaceholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\{\{secret:([A-Za-z_][A-Za-z0-9_]*)\}\}$`) })

// jdbcConsumers reads the JDBC catalogs of a properties file (Spark's
// spark-defaults.conf): a KEY.uri with a MariaDB JDBC URL, KEY.jdbc.user
// and KEY.jdbc.password ({{secret:NAME}} of the file's secrets).
func jdbcConsumers(c *checker, n *Node, r *reconciler.Resource) []consumer {
	var spec struct {
		Content string `json:"content"`
		Secrets map[string]struct {
			Secret string `json:"secret"`
		} `json:"secrets"`
	}
	if json.Unmarshal(r.Spec, &spec) != nil || !jdbcURL().MatchString(spec.Content) {
		return nil
	}
	props := map[string]string{}
	var keys []string
	for _, line := range strings.Split(spec.Content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if i := strings.IndexAny(line, "= \t"); i >= 0 {
			k, v, ok = line[:i], strings.TrimSpace(strings.TrimLeft(line[i:], "= \t")), true
		}
		if ok {
			props[k] = v
			keys = append(keys, k)
		}
	}
	var out []consumer
	for _, k := range keys {
		if !strings.HasSuffix(k, ".uri") || !jdbcURL().MatchString(props[k]) {
			continue
		}
		prefix := strings.TrimSuffix(k, ".uri")
		u, err := url.Parse(strings.TrimPrefix(props[k], "jdbc:"))
		if err != nil {
			continue
		}
		port := 3306
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		co := consumer{
			node: n.Name, id: r.ID, what: fmt.Sprintf("the JDBC catalog %s", strings.TrimPrefix(prefix, "spark.sql.catalog.")),
			ref:      serverRef{Host: u.Hostname(), Port: port},
			database: strings.Trim(u.Path, "/"),
			user:     props[prefix+".jdbc.user"],
		}
		if m := secretPlaceholder().FindStringSubmatch(props[prefix+".jdbc.password"]); m != nil {
			co.secret = spec.Secrets[m[1]].Secret
		}
		id := r.ID
		co.pos = func(field string) string {
			return c.best(n.Where.Data("iceberg", "db", field), n.Where.Resource(id, "content"), n.pos())
		}
		out = append(out, co)
	}
	return out
}

// account is a MariaDB user or grant the site declares, on the server it
// is applied to.
type account struct {
	node     string // where it is declared
	id       reconciler.ID
	server   string // the node whose server has it
	user     string
	host     string
	secret   string
	database string
	table    string
	privs    []string
}

// accounts lists the users, grants and databases of every server, by the
// node of the server (which may differ from the node that declares them).
func (c *checker) accounts() (users, grants, dbs []account) {
	for _, name := range c.order {
		n := c.nodes[name]
		for i := range n.Catalog.Resources {
			r := &n.Catalog.Resources[i]
			var spec struct {
				User     string    `json:"user"`
				Host     string    `json:"host"`
				Name     string    `json:"name"`
				Ensure   string    `json:"ensure"`
				Database string    `json:"database"`
				Table    string    `json:"table"`
				Privs    []string  `json:"privileges"`
				Server   serverRef `json:"server"`
				Password struct {
					Secret string `json:"secret"`
				} `json:"password"`
			}
			switch r.Kind() {
			case "mariadb.user", "mariadb.grant", "mariadb.database":
			default:
				continue
			}
			if json.Unmarshal(r.Spec, &spec) != nil || spec.Ensure == "absent" {
				continue
			}
			srv := name
			if spec.Server.Host != "" {
				rs, ok := c.resolve(spec.Server.Host, name)
				if !ok || rs.external {
					continue
				}
				srv = rs.node
			}
			a := account{node: name, id: r.ID, server: srv, user: spec.User, host: spec.Host, secret: spec.Password.Secret,
				database: spec.Database, table: spec.Table, privs: spec.Privs}
			switch r.Kind() {
			case "mariadb.user":
				users = append(users, a)
			case "mariadb.grant":
				grants = append(grants, a)
			default:
				a.database = spec.Name
				dbs = append(dbs, a)
			}
		}
	}
	return users, grants, dbs
}

// hostMatches reports whether a MariaDB host pattern (% and _ wildcards)
// admits a client name or address.
func hostMatches(pattern, client string) bool {
	var re strings.Builder
	re.WriteString("(?i)^")
	for _, r := range pattern {
		switch r {
		case '%':
			re.WriteString(".*")
		case '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), client)
	return ok
}

// clientNames are the names a server sees a client node connect as: the
// local names on the same node, the node's fqdn, name and address
// otherwise.
func (c *checker) clientNames(client, server string, socket bool) []string {
	if client == server {
		if socket {
			return []string{"localhost"}
		}
		return []string{"localhost", "127.0.0.1", "::1"}
	}
	n := c.nodes[client]
	out := []string{n.FQDN, n.Name}
	if n.Address != "" {
		out = append(out, n.Address)
	}
	return out
}

// catalogPrivileges are what Spark's JdbcCatalog and iceberg-go's SQL
// catalog need on their tables (iceberg_tables and
// iceberg_namespace_properties): they create them on first use, then
// read, add, update and delete rows.
var catalogPrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"}

// catalogTables are the JDBC catalog's tables.
var catalogTables = []string{"iceberg_tables", "iceberg_namespace_properties"}

// catalogs checks every client of the Iceberg catalog against the server
// it points at: the database, the user and its host pattern, the secret,
// the grants.
func (c *checker) catalogs() {
	users, grants, dbs := c.accounts()
	for _, co := range c.consumers() {
		field := "host"
		if co.ref.Host == "" {
			field = "socket"
		}
		side := Side{Node: co.node, Resource: co.id, at: func() string { return co.pos(field) }}
		t, ok := c.findServer(co.node, side, co.what, co.ref)
		if !ok || t.external {
			continue
		}
		srvNode := c.nodes[t.node]

		// The database.
		found := false
		for _, d := range dbs {
			if d.server == t.node && d.database == co.database {
				found = true
			}
		}
		if !found {
			side.Pos = co.pos("database")
			other := c.serverSide(*t.server, "databases")
			other.Pos = c.best(srvNode.Where.Data("iceberg", "db", "database"), other.Pos)
			c.add(CheckCatalogDatabase, side, other, "%s uses database %s on node %s, but no node declares mariadb.database:%s on that server (%s)", co.what, co.database, t.node, co.database, where(other)).
				Causes = []string{"mariadb.database:", "iceberg.", "file:"}
		}

		// The user and its host pattern.
		var named []account
		for _, u := range users {
			if u.server == t.node && u.user == co.user {
				named = append(named, u)
			}
		}
		side.Pos, side.at = "", func() string { return co.pos("user") }
		if len(named) == 0 {
			other := c.serverSide(*t.server, "users")
			other.Pos = c.best(srvNode.Where.Data("iceberg", "db", "user"), other.Pos)
			c.add(CheckCatalogUser, side, other, "%s logs in to node %s as %s, but no node declares that user on node %s's server (%s): node %s's catalog will lose access", co.what, t.node, co.user, t.node, where(other), co.node).
				Causes = []string{"mariadb.user:" + co.user + "@", "iceberg.", "file:"}
			continue
		}
		names := c.clientNames(co.node, t.node, co.ref.Host == "")
		var match *account
		for i := range named {
			for _, nm := range names {
				if nm != "" && hostMatches(named[i].host, nm) {
					match = &named[i]
					break
				}
			}
			if match != nil {
				break
			}
		}
		if match == nil {
			u := named[0]
			un := c.nodes[u.node]
			other := Side{Node: u.node, Resource: u.id, Pos: c.best(un.Where.Data("mariadb", "users", u.user, "host"), un.Where.Data("iceberg", "db", "clientHost"), un.Where.Resource(u.id, "host"))}
			c.add(CheckCatalogUser, side, other, "%s logs in to node %s as %s from node %s (%s), but the account %s@'%s' admits no such host (%s): set its host to a pattern that matches the client, such as '%%' or the client's fqdn", co.what, t.node, co.user, co.node, strings.Join(nonEmpty(names), ", "), u.user, u.host, where(other)).
				Causes = []string{"mariadb.user:" + co.user + "@"}
			continue
		}
		mn := c.nodes[match.node]
		userSide := Side{Node: match.node, Resource: match.id}

		// The secret.
		if co.secret != match.secret {
			userSide.Pos = c.best(mn.Where.Data("mariadb", "users", match.user, "password"), mn.Where.Data("iceberg", "db", "password"), mn.Where.Resource(match.id, "password"))
			side.Pos = co.pos("password")
			c.add(CheckCatalogSecret, side, userSide, "%s logs in as %s with secret %q, but the account %s@'%s' has secret %q (%s): both sides must name the same secret", co.what, co.user, co.secret, match.user, match.host, match.secret, where(userSide)).
				Causes = []string{string(match.id), "iceberg.", "file:"}
		}

		// The grants on the catalog's tables (of a database that exists:
		// a missing one is reported above).
		if !found {
			continue
		}
		var missing []string
		var grantIDs []reconciler.ID
		for _, tbl := range catalogTables {
			have := map[string]bool{}
			for _, g := range grants {
				if g.server == t.node && g.user == match.user && g.host == match.host &&
					(g.database == co.database || g.database == "*") && (g.table == "*" || g.table == tbl) {
					for _, p := range g.privs {
						have[p] = true
					}
					if !slices.Contains(grantIDs, g.id) {
						grantIDs = append(grantIDs, g.id)
					}
				}
			}
			if have["ALL PRIVILEGES"] {
				continue
			}
			for _, p := range catalogPrivileges {
				if !have[p] && !slices.Contains(missing, p) {
					missing = append(missing, p)
				}
			}
		}
		if len(missing) > 0 {
			other := Side{Node: match.node, Resource: match.id, Pos: userSide.Pos}
			if len(grantIDs) > 0 {
				gn := c.nodes[c.declarer(grants, grantIDs[0])]
				other = Side{Node: gn.Name, Resource: grantIDs[0], Pos: c.best(gn.Where.Data("iceberg", "db", "privileges"), gn.Where.Resource(grantIDs[0], "privileges"))}
			} else {
				other.Pos = c.best(mn.Where.Resource(match.id), srvNode.pos())
			}
			side.Pos = co.pos("user")
			c.add(CheckCatalogGrants, side, other, "%s needs %s on %s.%s and %s.%s, but the grants of %s@'%s' lack %s (%s)", co.what, strings.Join(catalogPrivileges, ", "), co.database, catalogTables[0], co.database, catalogTables[1], match.user, match.host, strings.Join(missing, ", "), where(other)).
				Causes = []string{"mariadb.grant:" + match.user + "@"}
		}
	}
}

// declarer returns the node that declares a grant.
func (c *checker) declarer(grants []account, id reconciler.ID) string {
	for _, g := range grants {
		if g.id == id {
			return g.node
		}
	}
	return ""
}

func nonEmpty(l []string) []string {
	var out []string
	for _, s := range l {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
