package desired

import (
	"context"
	"encoding/json"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/schema"
)

// groupsFS is sites/example with n generated nodes of its three roles and
// of a role "probe" whose profiles read the node's name in the ways a
// shared evaluation must not get wrong, plus nodes that differ from their
// role's others in data, address, resources and windows.
func groupsFS(t *testing.T, n int) map[string]string {
	return groupsFSWith(t, n, func(name, src string) string { return src })
}

// groupsFSWith is groupsFS with the built-in profile files passed through
// edit (by name, "profile/catalog.cue").
func groupsFSWith(t *testing.T, n int, edit func(name, src string) string) map[string]string {
	t.Helper()
	extra := fleetFS(t, n)
	var b strings.Builder
	b.WriteString(extra["sites/example/nodes.cue"])
	b.WriteString(`
nodes: {
	"probe-1": {role: "probe"}
	"probe-2": {role: "probe", fqdn: "probe-2.example.org"}
	"probe-3": {role: "probe"}
	"probe-4": {role: "probe"}
	"probe-5": {role: "probe", address: "10.0.0.5"}
	"node-003": data: mariadb: maxConnections: 900
	"node-006": resources: "file:/etc/node-006": content: "mine\n"
	"node-009": operations: windows: [{start: "01:00", end: "02:00"}]
	// Three groups of three with node data and node resources, each
	// node's on its own line: positions must be each node's own.
	"node-012": data: mariadb: port: 3307
	"node-015": data: mariadb: port: 3307
	"node-018": data: mariadb: port: 3307
	"node-013": resources: "file:/etc/same": content: "same\n"
	"node-016": resources: "file:/etc/same": content: "same\n"
	"node-019": resources: "file:/etc/same": content: "same\n"
	// A group whose own resource has a problem: each node's is at its
	// own line.
	"node-022": resources: "file:/etc/bad": {content: "x\n", require: ["file:/nope"]}
	"node-025": resources: "file:/etc/bad": {content: "x\n", require: ["file:/nope"]}
	"node-028": resources: "file:/etc/bad": {content: "x\n", require: ["file:/nope"]}
}

roles: probe: profiles: ["base", "namecond", "usesname", "hiddencheck", "plain", "copies", "hostcheck", "unifytest", "bothnames"]

// A monitoring role with a profile that reads the name and the topology:
// evaluated per node, it must see the topology as #Catalog gives it.
nodes: {
	"pm-1": role: "probemon"
	"pm-2": role: "probemon"
	"pm-3": role: "probemon"
}
roles: probemon: {
	profiles: ["base", "node_exporter", "prometheus_server", "toponame"]
	data: monitoring: alertmanager: receiver: {name: "x", webhooks: [{url: "http://127.0.0.1:5001/alerts"}]}
}
`)
	extra["sites/example/nodes.cue"] = b.String()
	// A tree with schema/profile/ has those profiles only: the built-in
	// ones, and the probes.
	for _, name := range schema.ProfileFiles() {
		b, err := fs.ReadFile(schema.Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		extra["schema/"+name] = edit(name, string(b))
	}
	extra["schema/profile/zz_probe.cue"] = `package profile

// namecond has a resource only on one node.
#Profiles: namecond: #Profile & {
	data: _
	node: _
	resources: {
		if node.name == "probe-3" {
			"file:/etc/special": content: "special\n"
		}
		"file:/etc/plain-namecond": content: "plain\n"
	}
}

// usesname puts the name and fqdn in an ID and a value.
#Profiles: usesname: #Profile & {
	node: _
	resources: "file:/etc/hostname-\(node.name)": content: "\(node.fqdn)\n"
}

// toponame puts the name and what the topology holds in a file.
#Profiles: toponame: #Profile & {
	node: _
	resources: "file:/etc/topo-\(node.name)": content: "parts for prometheus_server: \(len([for k, _ in node.topology if k == "prometheus_server" {k}]))\n"
}

// hiddencheck is concrete but for a hidden field that refuses one name.
#Profiles: hiddencheck: #Profile & {
	node: _
	resources: "file:/etc/hc": {content: "x\n", _c: node.name & !="probe-4"}
}

// copies puts the name and fqdn, whole, in fields that take any string:
// one evaluation serves the group (template.go).
#Profiles: copies: #Profile & {
	node: _
	resources: "docker.container:copies": {
		image: "example/copies:1"
		user:  node.name
		env: {HOST: node.fqdn, NAME: node.name, FIXED: "x"}
		command: [node.fqdn, "--flag"]
	}
}

// hostcheck copies the fqdn into a field that its kind constrains.
#Profiles: hostcheck: #Profile & {
	node: _
	resources: "docker.container:hostcheck": {image: "example/hc:1", hostname: node.fqdn}
}

// unifytest asks whether the name unifies with a literal: a test the
// name decides, which neither string nor a stand-in answers as probe-3's
// name does.
#Profiles: unifytest: #Profile & {
	node: _
	resources: {
		if (node.name & "probe-3") != _|_ {
			"file:/etc/unify-probe-3": content: "x\n"
		}
		"file:/etc/unify": content: "u\n"
	}
}

// bothnames puts the name and the fqdn in one field: valid only on a node
// whose fqdn is its name.
#Profiles: bothnames: #Profile & {
	node: _
	resources: "file:/etc/both": content: node.name
	resources: "file:/etc/both": content: node.fqdn
}

// plain does not read the node at all.
#Profiles: plain: #Profile & {
	resources: "file:/etc/plain": content: "plain\n"
}
`
	return extra
}

// TestGroups_SameAsAlone checks that evaluating nodes together (sharing
// the parts of a group's catalog) gives every node the catalog and the
// problems that evaluating it alone gives.
func TestGroups_SameAsAlone(t *testing.T) {
	t.Run("skip", func(t *testing.T) { sameAsAlone(t, groupsFS(t, 30), 25) })
	// A site's own #Catalog without skip: the nodes of a group whose
	// profiles read the name are evaluated alone.
	t.Run("no skip", func(t *testing.T) {
		sameAsAlone(t, groupsFSWith(t, 30, func(name, src string) string {
			if name != "profile/catalog.cue" {
				return src
			}
			out := strings.Replace(src, "skip: [string]: true", "", 1)
			out = strings.Replace(out, " if skip[p] == _|_", "", 1)
			if out == src {
				t.Fatal("catalog.cue has no skip to remove")
			}
			return out
		}), 15)
	})
}

// sameAsAlone checks the nodes of the site of extra, and that at least
// minShared of them were evaluated in a usable group.
func sameAsAlone(t *testing.T, extra map[string]string, minShared int) {
	together := loadExample(t, extra)
	res, err := together.EvaluateNodes(context.Background(), together.Nodes())
	if err != nil {
		t.Fatal(err)
	}
	if len(together.groups) == 0 {
		t.Fatal("no group was evaluated: the test checks nothing")
	}
	alone := loadExample(t, extra)
	keys := map[string]string{}
	for i, k := range together.groupKeys(together.Nodes()) {
		keys[together.Nodes()[i]] = k
	}
	shared := 0
	for _, r := range res {
		cat, src, probs := alone.catalogFor(r.Node)
		got, _ := json.Marshal(r.Catalog)
		want, _ := json.Marshal(cat)
		if string(got) != string(want) {
			t.Errorf("%s: catalog evaluated together:\n%s\nalone:\n%s", r.Node, got, want)
		}
		if !reflect.DeepEqual(r.Problems, probs) {
			t.Errorf("%s: problems evaluated together: %v\nalone: %v", r.Node, r.Problems, probs)
		}
		if r.Catalog != nil && cat != nil {
			for _, res := range cat.Resources {
				for _, field := range [][]string{nil, {"content"}, {"env"}} {
					if g, w := r.Sources.Resource(res.ID, field...), src.Resource(res.ID, field...); g != w {
						t.Errorf("%s: %s %v is at %s evaluated together, at %s alone", r.Node, res.ID, field, g, w)
					}
				}
			}
			for _, path := range [][]string{{"mariadb", "maxConnections"}, {"mariadb", "port"}, {"base", "packages"}, {"weaviate", "version"}} {
				if g, w := r.Sources.Data(path...), src.Data(path...); g != w {
					t.Errorf("%s: data %v is at %s evaluated together, at %s alone", r.Node, path, g, w)
				}
			}
		}
		// The group may have been evaluated by another worker's copy of
		// the site: evaluate it here (once) to know whether it is usable.
		if k := keys[r.Node]; k != "" && together.groupFor(k, together.nodes[r.Node]).ok {
			shared++
		}
	}
	if shared < minShared {
		t.Errorf("only %d nodes were evaluated in a usable group", shared)
	}
	// The cases the probe role is there for.
	byNode := map[string]NodeResult{}
	for _, r := range res {
		byNode[r.Node] = r
	}
	if c := byNode["probe-3"].Catalog; c == nil || c.Lookup("file:/etc/special") == nil {
		t.Errorf("probe-3 lost the resource only it has: %v", byNode["probe-3"].Problems)
	}
	if c := byNode["probe-1"].Catalog; c == nil || c.Lookup("file:/etc/special") != nil || c.Lookup("file:/etc/hostname-probe-1") == nil {
		t.Errorf("probe-1: wrong resources: %v", byNode["probe-1"].Problems)
	}
	if c := byNode["pm-2"].Catalog; c == nil || c.Lookup("file:/etc/topo-pm-2") == nil || !strings.Contains(string(c.Lookup("file:/etc/topo-pm-2").Spec), "prometheus_server: 1") {
		t.Errorf("pm-2: no topology in its per-node profile: %v", byNode["pm-2"].Problems)
	}
	if c := byNode["probe-3"].Catalog; c == nil || c.Lookup("file:/etc/unify-probe-3") == nil {
		t.Errorf("probe-3 lost the resource its name unifies into: %v", byNode["probe-3"].Problems)
	}
	if c := byNode["probe-1"].Catalog; c == nil || c.Lookup("file:/etc/unify-probe-3") != nil {
		t.Errorf("probe-1 has probe-3's resource: %v", byNode["probe-1"].Problems)
	}
	if c := byNode["probe-1"].Catalog; c == nil || !strings.Contains(string(c.Lookup("docker.container:copies").Spec), `"HOST":"probe-1"`) {
		t.Errorf("probe-1: its fqdn is not in the copies container: %v", byNode["probe-1"].Problems)
	}
	if c := byNode["node-006"].Catalog; c == nil || c.Lookup("file:/etc/node-006") == nil {
		t.Error("node-006 lost its own resource")
	}
	if c := byNode["node-009"].Catalog; c == nil || len(c.Windows) != 1 {
		t.Error("node-009 lost its window")
	}
}

// TestGroups_Differ checks that nodes whose inputs differ beyond their
// name and fqdn are not in one group.
func TestGroups_Differ(t *testing.T) {
	s := loadExample(t, groupsFS(t, 30))
	key := func(n string) string {
		k, ok := s.groupKey(s.nodes[n])
		if !ok {
			t.Fatalf("%s: no key", n)
		}
		return k
	}
	for _, p := range [][2]string{{"node-000", "node-021"}, {"node-012", "node-015"}, {"node-013", "node-016"}, {"probe-1", "probe-2"}} {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%s and %s: different groups", p[0], p[1])
		}
	}
	for _, p := range [][2]string{{"node-000", "node-003"}, {"node-000", "node-006"}, {"node-000", "node-009"}, {"probe-1", "probe-5"}, {"node-000", "node-001"}} {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s: one group", p[0], p[1])
		}
	}
}

// groupKeys are the group keys of nodes that share one with at least
// minGroup-1 others, "" for the others.
func (s *Site) groupKeys(nodes []string) []string {
	keys := make([]string, len(nodes))
	for i, name := range nodes {
		keys[i] = s.nodeKey(name)
	}
	return filterKeys(keys)
}

// TestTemplates checks which per-node profiles are evaluated once for
// their group (template.go) and which per node: a template must be made
// where the profile copies the name or fqdn whole, and refused wherever a
// node's own evaluation could differ from the template's.
func TestTemplates(t *testing.T) {
	s := loadExample(t, groupsFS(t, 30))
	group := func(role string) *group {
		t.Helper()
		for _, name := range s.Nodes() {
			if n := s.nodes[name]; n.role == role {
				if k := s.nodeKey(name); k != "" {
					g := s.groupFor(k, n)
					if !g.ok || !g.direct {
						t.Fatalf("%s: the group of %s is not usable with per-node profiles", role, name)
					}
					return g
				}
			}
		}
		t.Fatalf("no group of role %s", role)
		return nil
	}
	for _, c := range []struct {
		role, profile string
		template      bool
	}{
		{"feature_store_vector", "weaviate_node", true},
		{"probe", "copies", true},
		{"probe", "hostcheck", false},   // the kind constrains the field
		{"probe", "unifytest", false},   // the name decides a test
		{"probe", "bothnames", false},   // two copies in one field
		{"probe", "usesname", false},    // the name in an ID, interpolated
		{"probe", "namecond", false},    // the name compared
		{"probe", "hiddencheck", false}, // the name constrained, hidden
	} {
		g := group(c.role)
		if got := s.templateFor(g, s.roles[c.role], c.profile) != nil; got != c.template {
			t.Errorf("%s: template made: %v, want %v", c.profile, got, c.template)
		}
	}
}
