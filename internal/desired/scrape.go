package desired

import (
	"slices"
	"strconv"

	"cuelang.org/go/cue"
)

// The built-in #Topology's part for prometheus_server (schema/profile/
// monitoring.cue) lists every scrape target of the fleet. Evaluated in CUE
// its comprehensions cost ~0.6 ms per node (0.6 s at 1,000 nodes, paid
// again by plan at each revision); scrapeTargets computes the same from
// the site's structure in Go, reading each value the CUE reads from the
// same layers. Whatever it cannot read as plain data (a value that is not
// concrete, or not of the type the CUE uses) makes it give up, and
// #Topology is evaluated instead. TestScrapeTargetsMatchCUE holds the two
// to the same result.

// monitoringJobs is monitoring.cue's _monitoringJobs: the scrape jobs, in
// the order of the generated configuration.
var monitoringJobs = [...]string{"prometheus", "alertmanager", "fsgit", "node", "mysqld", "weaviate"}

// targetPorts is monitoring.cue's _portsOf: for a node's layers (its own,
// its role's, the site's; the first that sets a value wins), the ports of
// its scrape targets and whether Weaviate's metrics are on.
type targetPorts struct {
	ne, me, pp, ap, wp int64
	we                 bool
}

// portsOf is _portsOf of layers; ok is false when a value the CUE would
// take is not a concrete value of its type.
func portsOf(layers ...cue.Value) (p targetPorts, ok bool) {
	ints := []struct {
		dst  *int64
		path []string
		def  int64
	}{
		{&p.ne, []string{"monitoring", "nodeExporter", "port"}, 9100},
		{&p.me, []string{"monitoring", "mysqldExporter", "port"}, 9104},
		{&p.pp, []string{"monitoring", "prometheus", "port"}, 9090},
		{&p.ap, []string{"monitoring", "alertmanager", "port"}, 9093},
		{&p.wp, []string{"weaviate", "metrics", "port"}, 2112},
	}
	for _, f := range ints {
		v, found, ok := firstSet(layers, f.path)
		switch {
		case !ok:
			return p, false
		case !found:
			*f.dst = f.def
		default:
			n, err := v.Int64()
			if err != nil {
				return p, false
			}
			*f.dst = n
		}
	}
	v, found, ok := firstSet(layers, []string{"weaviate", "metrics", "enabled"})
	if !ok {
		return p, false
	}
	if found {
		b, err := v.Bool()
		if err != nil {
			return p, false
		}
		p.we = b
	}
	return p, true
}

// firstSet is the value at path in the first layer that has one (its
// default taken). ok is false when a layer's value there is an error: the
// CUE skips it (x != _|_ is false), which only an invalid site has, and
// the CUE's reading of it is left to the CUE.
func firstSet(layers []cue.Value, path []string) (v cue.Value, found, ok bool) {
	for _, l := range layers {
		w := l.LookupPath(cue.MakePath(strSels(path)...))
		if !w.Exists() {
			continue
		}
		if w.Err() != nil {
			return v, false, false
		}
		if d, isDefault := w.Default(); isDefault {
			w = d
		}
		return w, true, true
	}
	return v, false, true
}

// strSels are selectors for the field names path.
func strSels(path []string) []cue.Selector {
	sel := make([]cue.Selector, len(path))
	for i, f := range path {
		sel[i] = cue.Str(f)
	}
	return sel
}

// scrapeTargets is the built-in #Topology's out.profiles.prometheus_server
// for the site, as #Topology.out decodes it; found is false when no
// node's role has prometheus_server (the part is then absent), ok false
// when only the CUE can say.
func (s *Site) scrapeTargets() (part map[string]any, found, ok bool) {
	has := func(role, profile string) bool {
		r := s.roles[role]
		return r != nil && slices.Contains(r.profiles, profile)
	}
	names := make([]string, 0, len(s.nodes))
	for name, n := range s.nodes {
		if s.roles[n.role] != nil {
			names = append(names, name)
			found = found || has(n.role, builtinPart)
		}
	}
	if !found {
		return nil, false, true
	}
	slices.Sort(names)

	siteData := s.site.LookupPath(cue.MakePath(cue.Str("data")))
	var agentPort int64
	if v, set, ok := firstSet([]cue.Value{siteData}, []string{"monitoring", "agent", "metricsPort"}); !ok {
		return nil, true, false
	} else if set {
		n, err := v.Int64()
		if err != nil {
			return nil, true, false
		}
		agentPort = n
	}
	roleData := map[string]cue.Value{}
	byRole := map[string]targetPorts{}
	for r := range s.roles {
		d := s.site.LookupPath(cue.MakePath(cue.Str("roles"), cue.Str(r), cue.Str("data")))
		p, ok := portsOf(d, siteData)
		if !ok {
			return nil, true, false
		}
		roleData[r], byRole[r] = d, p
	}

	type target struct{ job, address, node, role string }
	var all []target
	for _, name := range names {
		n := s.nodes[name]
		fqdn, err := n.value.LookupPath(cue.MakePath(cue.Str("fqdn"))).String()
		if err != nil {
			return nil, true, false
		}
		p := byRole[n.role]
		own := n.value.LookupPath(cue.MakePath(cue.Str("data")))
		if own.LookupPath(cue.MakePath(cue.Str("monitoring"))).Exists() || own.LookupPath(cue.MakePath(cue.Str("weaviate"))).Exists() {
			if p, ok = portsOf(own, roleData[n.role], siteData); !ok {
				return nil, true, false
			}
		}
		add := func(job string, port int64) {
			all = append(all, target{job: job, address: fqdn + ":" + strconv.FormatInt(port, 10), node: name, role: n.role})
		}
		if has(n.role, "prometheus_server") {
			add("prometheus", p.pp)
		}
		if has(n.role, "alertmanager") {
			add("alertmanager", p.ap)
		}
		if agentPort > 0 {
			add("fsgit", agentPort)
		}
		if has(n.role, "node_exporter") {
			add("node", p.ne)
		}
		if has(n.role, "mysqld_exporter") {
			add("mysqld", p.me)
		}
		if has(n.role, "weaviate_node") && p.we {
			add("weaviate", p.wp)
		}
	}
	jobs := make(map[string]any, len(monitoringJobs))
	for _, j := range monitoringJobs {
		list := []any{}
		for _, t := range all {
			if t.job == j {
				list = append(list, map[string]any{"address": t.address, "labels": map[string]any{"node": t.node, "role": t.role}})
			}
		}
		jobs[j] = list
	}
	ams := []any{}
	for _, t := range all {
		if t.job == "alertmanager" {
			ams = append(ams, t.address)
		}
	}
	return map[string]any{"jobs": jobs, "alertmanagers": ams}, true, true
}
