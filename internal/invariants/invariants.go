// Package invariants checks the nodes of a site as one system: every
// node's catalog can be valid on its own and the feature store still be
// broken across nodes (Spark's Iceberg catalog logs in to a MariaDB user
// that another node does not declare, Weaviate calls a vectorizer that no
// container provides, two services claim one port). [Check] takes the
// evaluated catalogs of every node, with the positions their values come
// from, and returns findings that name both sides with file:line:col.
// docs/invariants.md lists the checks.
package invariants

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/internal/crash"
	"github.com/fsgit/fsgit/reconciler"
)

// The checks, by the name a waiver gives.
const (
	// CheckEndpoint: an endpoint a node uses resolves to a node and a
	// resource of the site, or is marked external.
	CheckEndpoint = "endpoint"
	// CheckMariaDBListen: the MariaDB server's bind address and port admit
	// the clients the site declares.
	CheckMariaDBListen = "mariadb-listen"
	// CheckCatalogDatabase: the Iceberg catalog's database exists on the
	// server it points at.
	CheckCatalogDatabase = "catalog-database"
	// CheckCatalogUser: the catalog's user exists there with a host
	// pattern that admits the client node.
	CheckCatalogUser = "catalog-user"
	// CheckCatalogSecret: the client and the account use the same secret.
	CheckCatalogSecret = "catalog-secret"
	// CheckCatalogGrants: the account's grants cover what the JDBC catalog
	// needs on its tables.
	CheckCatalogGrants = "catalog-grants"
	// CheckPortConflict: no two services or containers of a node claim
	// one port.
	CheckPortConflict = "port-conflict"
	// CheckWeaviateModules: Weaviate's enabled modules match the
	// vectorizer containers and their URLs, and its classes use enabled
	// modules.
	CheckWeaviateModules = "weaviate-modules"
	// CheckSecretProvided: every secret referenced is provided where the
	// node looks for it.
	CheckSecretProvided = "secret-provided"
)

// Checks lists every check, in the order docs/invariants.md gives them.
var Checks = []string{CheckEndpoint, CheckMariaDBListen, CheckCatalogDatabase, CheckCatalogUser, CheckCatalogSecret, CheckCatalogGrants, CheckPortConflict, CheckWeaviateModules, CheckSecretProvided}

// Locator says where a node's values come from, as file:line:col; ""
// when unknown. *desired.Sources implements it.
type Locator interface {
	// Resource is the position of a resource, or of a field in it.
	Resource(id reconciler.ID, field ...string) string
	// Data is the position of a field of the node's data.
	Data(path ...string) string
}

// Node is one node of the site, with its valid catalog.
type Node struct {
	Name    string
	Role    string
	FQDN    string
	Address string
	// At finds where the site declares the node: a CUE lookup, done only
	// when a finding needs it (nil: not known).
	At      func() string
	Catalog *reconciler.Catalog
	Where   Locator
}

// Config is the site's invariants field (schema #Invariants).
type Config struct {
	External map[string]External `json:"external,omitempty"`
	Secrets  *SecretsConfig      `json:"secrets,omitempty"`
	Waive    []Waiver            `json:"waive,omitempty"`
}

// External is an endpoint outside the site.
type External struct {
	Reason string `json:"reason"`
}

// SecretsConfig says where the nodes look for secrets.
type SecretsConfig struct {
	// Provider is "age" or "files".
	Provider string `json:"provider"`
	// Files are the names a "files" provider has.
	Files []string `json:"files,omitempty"`
}

// Waiver waives one check for one resource of one node.
type Waiver struct {
	Check    string        `json:"check"`
	Node     string        `json:"node"`
	Resource reconciler.ID `json:"resource"`
	Reason   string        `json:"reason"`
}

// Input is what Check needs.
type Input struct {
	Nodes  []Node
	Config Config
	// AgeFile reports whether the repository has the age file of a secret
	// and returns its name as printed; nil when the site has no secrets
	// directory.
	AgeFile func(secret string) (string, bool)
	// InSite reports whether a position names a file of the site (rather
	// than a profile or the schema); the most useful position of a value
	// is the site's.
	InSite func(pos string) bool
	// SecretsPos is where the site says where secrets come from, "" when
	// it does not.
	SecretsPos string
}

// Side is one side of a finding: a node and, when there is one, its
// resource, with the position of the value concerned.
type Side struct {
	Node     string        `json:"node"`
	Resource reconciler.ID `json:"resource,omitempty"`
	Pos      string        `json:"pos,omitempty"`
	// at finds Pos when a finding is added: finding a position costs a
	// CUE lookup, which only a finding needs.
	at func() string
}

// Finding is one broken invariant.
type Finding struct {
	Check string `json:"check"`
	// Side is the node and resource that use something; Other is what
	// they use (or lack), maybe on the same node.
	Side  Side `json:"side"`
	Other Side `json:"other"`
	// Msg is the sentence; it names both sides.
	Msg string `json:"message"`
	// Waived is the waiver's reason when the site waives the finding.
	Waived string `json:"waived,omitempty"`
	// Causes are prefixes of resource IDs whose change, on either side's
	// node, explains the finding (a plan names the change that broke it).
	Causes []string `json:"-"`
}

// String renders a finding on one line, in the form vet prints problems:
// "file:line:col: node N: resource R: message (check C)".
func (f Finding) String() string {
	var b strings.Builder
	if f.Side.Pos != "" {
		b.WriteString(f.Side.Pos + ": ")
	}
	if f.Waived != "" {
		b.WriteString("waived: ")
	}
	fmt.Fprintf(&b, "node %s: ", f.Side.Node)
	if f.Side.Resource != "" {
		fmt.Fprintf(&b, "resource %s: ", f.Side.Resource)
	}
	b.WriteString(f.Msg)
	fmt.Fprintf(&b, " (check %s", f.Check)
	if f.Waived != "" {
		fmt.Fprintf(&b, ", waived: %s", f.Waived)
	}
	b.WriteString(")")
	return b.String()
}

// Involves reports whether a side of the finding is on the node.
func (f Finding) Involves(node string) bool { return f.Side.Node == node || f.Other.Node == node }

// Result is what Check found.
type Result struct {
	// Findings are the broken invariants the site does not waive.
	Findings []Finding
	// Waived are the ones it waives, with the reason.
	Waived []Finding
	// Unused are waivers that match no finding.
	Unused []Waiver
}

// Check runs every check over the nodes.
func Check(in Input) Result {
	c := newChecker(in)
	// The checks are independent: each runs on its own fork of the
	// checker, at once, and their findings are taken in this order, as
	// if they had run one after the other.
	checks := []func(*checker){(*checker).mariadbEndpoints, (*checker).catalogs, (*checker).ports, (*checker).weaviate, (*checker).secrets}
	outs := make([][]Finding, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Add(1)
		go func() {
			defer crash.Exit()
			defer wg.Done()
			f := c.fork()
			check(f)
			outs[i] = f.out
		}()
	}
	wg.Wait()
	for _, o := range outs {
		c.out = append(c.out, o...)
	}

	var res Result
	used := make([]bool, len(in.Config.Waive))
	seen := map[string]bool{}
	for _, f := range c.out {
		key := f.Check + "\x00" + f.Side.Node + "\x00" + string(f.Side.Resource) + "\x00" + f.Msg
		if seen[key] {
			continue
		}
		seen[key] = true
		waived := false
		for i, w := range in.Config.Waive {
			if w.Check == f.Check && ((w.Node == f.Side.Node && w.Resource == f.Side.Resource) || (w.Node == f.Other.Node && w.Resource == f.Other.Resource)) {
				f.Waived, used[i], waived = w.Reason, true, true
				break
			}
		}
		if waived {
			res.Waived = append(res.Waived, f)
		} else {
			res.Findings = append(res.Findings, f)
		}
	}
	for i, w := range in.Config.Waive {
		if !used[i] {
			res.Unused = append(res.Unused, w)
		}
	}
	for _, l := range [][]Finding{res.Findings, res.Waived} {
		sort.SliceStable(l, func(i, j int) bool {
			if l[i].Side.Node != l[j].Side.Node {
				return l[i].Side.Node < l[j].Side.Node
			}
			return l[i].Side.Resource < l[j].Side.Resource
		})
	}
	return res
}

// checker holds what the checks share.
type checker struct {
	in    Input
	nodes map[string]*Node
	order []string
	out   []Finding
	// used are the containers a Weaviate module calls, by node and ID.
	used map[string]bool
	// servers and containers are each node's, decoded once (a node that
	// serves many is asked for them by each).
	servers    map[string][]mysqld
	containers map[string][]container
}

// fork is a checker for one check: the same input, its own findings and
// memos, so that checks can run at once.
func (c *checker) fork() *checker {
	return &checker{in: c.in, nodes: c.nodes, order: c.order, used: map[string]bool{}, servers: map[string][]mysqld{}, containers: map[string][]container{}}
}

// serversOf is servers(n), once per node.
func (c *checker) serversOf(n *Node) []mysqld { return once(c.servers, n, servers) }

// containersOf is containers(n), once per node.
func (c *checker) containersOf(n *Node) []container { return once(c.containers, n, containers) }

// once is f(n), found the first time and kept in memo by node name.
func once[T any](memo map[string]T, n *Node, f func(*Node) T) T {
	if v, ok := memo[n.Name]; ok {
		return v
	}
	v := f(n)
	memo[n.Name] = v
	return v
}

func newChecker(in Input) *checker {
	c := &checker{in: in, nodes: map[string]*Node{}, used: map[string]bool{}}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		c.nodes[n.Name] = n
		c.order = append(c.order, n.Name)
	}
	sort.Strings(c.order)
	return c
}

func (c *checker) add(check string, side, other Side, format string, args ...any) *Finding {
	for _, sd := range []*Side{&side, &other} {
		if sd.Pos == "" && sd.at != nil {
			sd.Pos = sd.at()
		}
		sd.at = nil
	}
	c.out = append(c.out, Finding{Check: check, Side: side, Other: other, Msg: fmt.Sprintf(format, args...)})
	return &c.out[len(c.out)-1]
}

// best returns the first position that names a site file, else the first
// one known.
func (c *checker) best(cands ...string) string {
	first := ""
	for _, p := range cands {
		if p == "" {
			continue
		}
		if c.in.InSite != nil && c.in.InSite(p) {
			return p
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// lazySide is a side whose position is found when a message renders it.
type lazySide Side

// String renders the side as where does, finding its position.
func (l lazySide) String() string {
	s := Side(l)
	if s.Pos == "" && s.at != nil {
		s.Pos = s.at()
	}
	return where(s)
}

// where renders a side for a message: "node N's R (pos)".
func where(s Side) string {
	var b strings.Builder
	b.WriteString("node " + s.Node)
	if s.Resource != "" {
		b.WriteString(" " + string(s.Resource))
	}
	if s.Pos != "" {
		b.WriteString(" (" + s.Pos + ")")
	}
	return b.String()
}

// resolved is where a host name leads.
type resolved struct {
	node     string // "" when outside the site
	external bool
}

// resolve finds the node a host names, as seen from node from: a loopback
// name is the node itself; a node's name, fqdn or address is that node; an
// external endpoint is outside the site.
func (c *checker) resolve(host, from string) (resolved, bool) {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	switch h {
	case "localhost", "127.0.0.1", "::1", "":
		return resolved{node: from}, true
	}
	for _, name := range c.order {
		n := c.nodes[name]
		if h == strings.ToLower(n.Name) || h == strings.ToLower(n.FQDN) || (n.Address != "" && h == strings.ToLower(n.Address)) {
			return resolved{node: name}, true
		}
	}
	for e := range c.in.Config.External {
		if strings.EqualFold(strings.TrimSuffix(e, "."), h) {
			return resolved{external: true}, true
		}
	}
	return resolved{}, false
}

// knownHosts lists what an endpoint may name, for messages.
func (c *checker) knownHosts() string {
	var l []string
	for _, name := range c.order {
		n := c.nodes[name]
		s := n.FQDN
		if n.Address != "" {
			s += " or " + n.Address
		}
		l = append(l, s)
	}
	return strings.Join(l, ", ")
}

// pos is where the site declares the node, "" when not known.
func (n *Node) pos() string {
	if n.At == nil {
		return ""
	}
	return n.At()
}

// nodeSide is a node as a side, positioned at its declaration.
func (c *checker) nodeSide(node string) Side {
	s := Side{Node: node}
	if n := c.nodes[node]; n != nil {
		s.Pos = n.pos()
	}
	return s
}

// each calls fn for every resource of every node whose kind is kind, in
// node and ID order.
func (c *checker) each(kind string, fn func(n *Node, r *reconciler.Resource)) {
	for _, name := range c.order {
		n := c.nodes[name]
		for i := range n.Catalog.Resources {
			r := &n.Catalog.Resources[i]
			if r.Kind() == kind {
				fn(n, r)
			}
		}
	}
}
