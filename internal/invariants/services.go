package invariants

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/fsgit/fsgit/reconciler"
)

// claim is a port a service or container of a node listens on.
type claim struct {
	id    reconciler.ID
	what  string
	port  int
	proto string
	ip    string // "" or 0.0.0.0 / :: for every address
	field []string
	data  []string // the data field it comes from, when a profile made it
}

// execPort matches the port options of a unit's ExecStart: --port N,
// --port=N, a Java/Hive property *.port=N, --web.listen-address=[H]:N.
var execPort = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:--port[= ]|\.port=|--web\.listen-address=[^\s:]*:|--listen-address=[^\s:]*:)([0-9]{1,5})\b`)
})

// claims lists the ports a node's resources listen on: MariaDB's port,
// the ports its services' units pass on their command line, and the host
// ports its containers publish.
func claims(n *Node) []claim {
	var out []claim
	for _, m := range servers(n) {
		if !m.skipNet {
			out = append(out, claim{id: m.id, what: "the MariaDB server", port: m.port, proto: "tcp", ip: m.bind, field: []string{"content"}, data: []string{"mariadb", "port"}})
		}
	}
	for i := range n.Catalog.Resources {
		r := &n.Catalog.Resources[i]
		switch r.Kind() {
		case "file":
			var spec struct {
				Content string `json:"content"`
				Ensure  string `json:"ensure"`
			}
			if json.Unmarshal(r.Spec, &spec) != nil || spec.Ensure == "absent" {
				continue
			}
			for _, line := range strings.Split(spec.Content, "\n") {
				if !strings.HasPrefix(strings.TrimSpace(line), "ExecStart=") {
					continue
				}
				for _, m := range execPort().FindAllStringSubmatch(line, -1) {
					p, _ := strconv.Atoi(m[1])
					out = append(out, claim{id: r.ID, what: "the service of " + r.ID.Name(), port: p, proto: "tcp", field: []string{"content"}})
				}
			}
		case "docker.container":
			var spec struct {
				Ensure string `json:"ensure"`
				Ports  []struct {
					Host   int    `json:"host"`
					Proto  string `json:"proto"`
					HostIP string `json:"hostIP"`
				} `json:"ports"`
			}
			if json.Unmarshal(r.Spec, &spec) != nil || spec.Ensure == "absent" {
				continue
			}
			for j, p := range spec.Ports {
				out = append(out, claim{id: r.ID, what: "container " + r.Name(), port: p.Host, proto: p.Proto, ip: p.HostIP, field: []string{"ports", strconv.Itoa(j), "host"}})
			}
		}
	}
	return out
}

// overlap reports whether two listen addresses share a port.
func overlap(a, b string) bool {
	wild := func(s string) bool { return s == "" || s == "0.0.0.0" || s == "::" || s == "*" }
	return wild(a) || wild(b) || a == b
}

// ports checks that no two claims of a node share a port.
func (c *checker) ports() {
	for _, name := range c.order {
		n := c.nodes[name]
		cl := claims(n)
		sort.SliceStable(cl, func(i, j int) bool { return cl[i].id < cl[j].id })
		for i := range cl {
			for j := i + 1; j < len(cl); j++ {
				a, b := cl[i], cl[j]
				if a.port != b.port || a.proto != b.proto || !overlap(a.ip, b.ip) || (a.id == b.id && slices.Equal(a.field, b.field)) {
					continue
				}
				sa := Side{Node: name, Resource: a.id, Pos: c.claimPos(n, a)}
				sb := Side{Node: name, Resource: b.id, Pos: c.claimPos(n, b)}
				c.add(CheckPortConflict, sa, sb, "%s claims %s port %d on node %s, and so does %s (%s): one of them cannot start", a.what, a.proto, a.port, name, b.what, where(sb))
			}
		}
	}
}

// claimPos is where a claim's port is set.
func (c *checker) claimPos(n *Node, cl claim) string {
	var data string
	if cl.data != nil {
		data = n.Where.Data(cl.data...)
	}
	return c.best(data, n.Where.Resource(cl.id, cl.field...), n.pos())
}

// moduleEnv is the environment variable that gives Weaviate the URL of a
// module's inference container.
var moduleEnv = map[string]string{
	"text2vec-transformers":  "TRANSFORMERS_INFERENCE_API",
	"text2vec-contextionary": "CONTEXTIONARY_URL",
	"multi2vec-clip":         "CLIP_INFERENCE_API",
	"multi2vec-bind":         "BIND_INFERENCE_API",
	"img2vec-neural":         "IMAGE_INFERENCE_API",
	"qna-transformers":       "QNA_INFERENCE_API",
	"sum-transformers":       "SUM_INFERENCE_API",
	"ner-transformers":       "NER_INFERENCE_API",
	"reranker-transformers":  "RERANKER_INFERENCE_API",
	"text-spellcheck":        "SPELLCHECK_INFERENCE_API",
}

// container is a docker.container's spec, as the checks read it.
type container struct {
	id       reconciler.ID
	Ensure   string            `json:"ensure"`
	Image    string            `json:"image"`
	Env      map[string]string `json:"env"`
	Networks []struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	} `json:"networks"`
	Ports []struct {
		Host int `json:"host"`
	} `json:"ports"`
}

func containers(n *Node) []container {
	var out []container
	for i := range n.Catalog.Resources {
		r := &n.Catalog.Resources[i]
		if r.Kind() != "docker.container" {
			continue
		}
		var ct container
		if json.Unmarshal(r.Spec, &ct) != nil || ct.Ensure == "absent" {
			continue
		}
		ct.id = r.ID
		out = append(out, ct)
	}
	return out
}

// modules returns a Weaviate container's enabled modules, nil when the
// container is not Weaviate (has no ENABLE_MODULES).
func (ct *container) modules() ([]string, bool) {
	v, ok := ct.Env["ENABLE_MODULES"]
	if !ok {
		return nil, false
	}
	var out []string
	for _, m := range strings.Split(v, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out, true
}

func (ct *container) networks() []string {
	var out []string
	for _, nw := range ct.Networks {
		out = append(out, nw.Name)
	}
	return out
}

// weaviate checks every Weaviate container's modules against the
// containers their URLs name, and every class against the Weaviate its URL
// names.
func (c *checker) weaviate() {
	for _, name := range c.order {
		n := c.nodes[name]
		cts := c.containersOf(n)
		for _, w := range cts {
			mods, ok := w.modules()
			if !ok {
				continue
			}
			envSide := func(key string) Side {
				id := w.id
				return Side{Node: name, Resource: id, at: func() string { return c.best(n.Where.Resource(id, "env", key)) }}
			}
			if d := w.Env["DEFAULT_VECTORIZER_MODULE"]; d != "" && d != "none" && !slices.Contains(mods, d) {
				s := envSide("DEFAULT_VECTORIZER_MODULE")
				o := envSide("ENABLE_MODULES")
				c.add(CheckWeaviateModules, s, o, "the default vectorizer module %s is not among the enabled modules %s (%s)", d, strings.Join(mods, ","), lazySide(o))
			}
			for mod, key := range moduleEnv {
				u, set := w.Env[key]
				switch {
				case slices.Contains(mods, mod) && !set:
					s := envSide("ENABLE_MODULES")
					c.add(CheckWeaviateModules, s, s, "module %s is enabled but %s, the URL of its inference container, is not set (%s)", mod, key, lazySide(s))
				case !slices.Contains(mods, mod) && set:
					s := envSide(key)
					o := envSide("ENABLE_MODULES")
					c.add(CheckWeaviateModules, s, o, "%s is set but module %s is not enabled (%s)", key, mod, lazySide(o))
				case set:
					c.inference(n, w, cts, mod, key, u, envSide(key))
				}
			}
		}
	}
	c.classes()
	c.unusedVectorizers()
}

// inferenceImage matches the image of a module's inference container
// (semitechnologies/transformers-inference, contextionary, ...), by the
// last segment of its repository.
var inferenceImage = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(^|/)[a-z0-9._-]*(inference|contextionary)[a-z0-9._-]*(:|@|$)`)
})

// unusedVectorizers reports inference containers that no Weaviate module
// calls: a container declared for a module that is not enabled, or whose
// URL names something else.
func (c *checker) unusedVectorizers() {
	c.each("docker.container", func(n *Node, r *reconciler.Resource) {
		var ct container
		if json.Unmarshal(r.Spec, &ct) != nil || ct.Ensure == "absent" || !inferenceImage().MatchString(ct.Image) || c.used[n.Name+"\x00"+string(r.ID)] {
			return
		}
		side := Side{Node: n.Name, Resource: r.ID, at: func() string { return c.best(n.Where.Resource(r.ID, "image"), n.Where.Resource(r.ID)) }}
		other := c.nodeSide(n.Name)
		for _, w := range c.containersOf(n) {
			if _, ok := w.modules(); ok {
				other = Side{Node: n.Name, Resource: w.id, Pos: c.best(n.Where.Resource(w.id, "env", "ENABLE_MODULES"), n.pos())}
				break
			}
		}
		c.add(CheckWeaviateModules, side, other, "container %s runs an inference image (%s), but no Weaviate of the site enables a module whose URL names it (%s): enable the module and set its URL, or remove the container", r.ID.Name(), ct.Image, where(other))
	})
}

// inference checks that a module's URL names a container on a network of
// the Weaviate container (by name or alias), or a node, or an external
// host.
func (c *checker) inference(n *Node, w container, cts []container, mod, key, raw string, side Side) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		c.add(CheckWeaviateModules, side, side, "%s is %q, which is not a URL (%s)", key, raw, lazySide(side))
		return
	}
	host := u.Hostname()
	for _, ct := range cts {
		if ct.id == w.id {
			continue
		}
		for _, nw := range ct.Networks {
			if ct.id.Name() != host && !slices.Contains(nw.Aliases, host) {
				continue
			}
			c.used[n.Name+"\x00"+string(ct.id)] = true
			if slices.Contains(w.networks(), nw.Name) {
				return
			}
			o := Side{Node: n.Name, Resource: ct.id, Pos: c.best(n.Where.Resource(ct.id, "networks"))}
			c.add(CheckWeaviateModules, side, o, "module %s calls %s, but container %s shares no network with %s (it is on %s, %s on %s; %s)", mod, raw, ct.id.Name(), w.id.Name(), strings.Join(ct.networks(), ","), w.id.Name(), strings.Join(w.networks(), ","), where(o))
			return
		}
	}
	if r, ok := c.resolve(host, n.Name); ok && (r.external || r.node != n.Name) {
		if r.external {
			return
		}
		port := 80
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		for _, ct := range c.containersOf(c.nodes[r.node]) {
			for _, p := range ct.Ports {
				if p.Host == port {
					c.used[r.node+"\x00"+string(ct.id)] = true
					return
				}
			}
		}
		o := c.nodeSide(r.node)
		c.add(CheckEndpoint, side, o, "module %s calls %s, but no container of node %s publishes port %d (%s)", mod, raw, r.node, port, where(o))
		return
	}
	c.add(CheckWeaviateModules, side, c.nodeSide(n.Name), "module %s calls %s, but no container of node %s is named or aliased %s on a network of %s, no node is %s, and it is not marked external (a vectorizer module without its container)", mod, raw, n.Name, host, w.id.Name(), host)
}

// classes checks that every weaviate.class reaches a Weaviate container of
// the site whose enabled modules include the class's vectorizer and the
// modules it configures.
func (c *checker) classes() {
	c.each("weaviate.class", func(n *Node, r *reconciler.Resource) {
		var spec struct {
			URL          string         `json:"url"`
			Vectorizer   string         `json:"vectorizer"`
			ModuleConfig map[string]any `json:"moduleConfig"`
			Ensure       string         `json:"ensure"`
		}
		if json.Unmarshal(r.Spec, &spec) != nil || spec.Ensure == "absent" {
			return
		}
		id := r.ID
		side := Side{Node: n.Name, Resource: id, at: func() string { return c.best(n.Where.Data("weaviate", "url"), n.Where.Resource(id, "url")) }}
		u, err := url.Parse(spec.URL)
		if err != nil {
			return
		}
		// The class's node reaches a container it declares by the
		// container's name or a network alias (Docker's DNS), as the fleet
		// demo's vector-1 reaches its Weaviate.
		check := func(tn *Node, ct container) {
			mods, isWeaviate := ct.modules()
			if !isWeaviate {
				o := Side{Node: tn.Name, Resource: ct.id, Pos: c.best(tn.Where.Resource(ct.id, "env"))}
				c.add(CheckEndpoint, side, o, "its url %s reaches container %s, which is not Weaviate (no ENABLE_MODULES; %s)", spec.URL, ct.id.Name(), where(o))
				return
			}
			o := Side{Node: tn.Name, Resource: ct.id}
			oPos := func() string {
				if o.Pos == "" {
					o.Pos = c.best(tn.Where.Resource(ct.id, "env", "ENABLE_MODULES"), tn.Where.Data("weaviate", "vectorizer", "module"), tn.pos())
				}
				return o.Pos
			}
			need := []string{}
			if spec.Vectorizer != "" && spec.Vectorizer != "none" {
				need = append(need, spec.Vectorizer)
			}
			for m := range spec.ModuleConfig {
				need = append(need, m)
			}
			sort.Strings(need)
			for _, m := range need {
				if !slices.Contains(mods, m) {
					oPos()
					s := side
					s.Pos = c.best(n.Where.Data("weaviate", "classes", r.ID.Name(), "vectorizer"), n.Where.Resource(r.ID, "vectorizer"), n.Where.Data("weaviate", "classes", r.ID.Name(), "moduleConfig"), n.Where.Resource(r.ID, "moduleConfig"))
					c.add(CheckWeaviateModules, s, o, "the class uses module %s, which the Weaviate at %s does not enable (ENABLE_MODULES %s; %s)", m, spec.URL, strings.Join(mods, ","), where(o))
				}
			}
		}
		for _, ct := range c.containersOf(n) {
			named := ct.id.Name() == u.Hostname()
			for _, nw := range ct.Networks {
				named = named || slices.Contains(nw.Aliases, u.Hostname())
			}
			if named {
				check(n, ct)
				return
			}
		}
		rs, ok := c.resolve(u.Hostname(), n.Name)
		if !ok {
			c.add(CheckEndpoint, side, c.nodeSide(n.Name), "its url %s names host %s, which is no node of the site (%s) and is not marked external in invariants.external", spec.URL, u.Hostname(), c.knownHosts())
			return
		}
		if rs.external {
			return
		}
		port := 80
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		tn := c.nodes[rs.node]
		for _, ct := range c.containersOf(tn) {
			published := false
			for _, p := range ct.Ports {
				published = published || p.Host == port
			}
			if !published {
				continue
			}
			check(tn, ct)
			return
		}
		o := c.nodeSide(rs.node)
		c.add(CheckEndpoint, side, o, "its url %s names node %s, but no container there publishes port %d (%s)", spec.URL, rs.node, port, where(o))
	})
}

// secretRef is a secret a resource references, with the path of the field.
type secretRef struct {
	name  string
	field []string
}

// secretRefs finds every {"secret": NAME} in a spec.
func secretRefs(spec json.RawMessage) []secretRef {
	// Specs are canonical JSON (desired's encoder never escapes a letter):
	// one without the key "secret" references none, and most have none.
	if !bytes.Contains(spec, []byte(`"secret"`)) {
		return nil
	}
	var v any
	if json.Unmarshal(spec, &v) != nil {
		return nil
	}
	var out []secretRef
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch x := v.(type) {
		case map[string]any:
			if name, ok := x["secret"].(string); ok && len(x) == 1 {
				out = append(out, secretRef{name: name, field: slices.Clone(path)})
				return
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k], append(path, k))
			}
		case []any:
			for i, e := range x {
				walk(e, append(path, strconv.Itoa(i)))
			}
		}
	}
	walk(v, nil)
	return out
}

// secrets checks that every secret referenced is provided: an age file in
// the repository, or a name the site lists for the files provider.
func (c *checker) secrets() {
	cfg := c.in.Config.Secrets
	provider := ""
	switch {
	case cfg != nil:
		provider = cfg.Provider
	case c.in.AgeFile != nil:
		provider = "age"
	default:
		// The site says nothing about where secrets come from: nothing
		// to check against (docs/invariants.md).
		return
	}
	for _, name := range c.order {
		n := c.nodes[name]
		for i := range n.Catalog.Resources {
			r := &n.Catalog.Resources[i]
			for _, ref := range secretRefs(r.Spec) {
				id, field := r.ID, ref.field
				side := Side{Node: name, Resource: id, at: func() string { return c.best(n.Where.Resource(id, field...)) }}
				o := Side{Node: name, Pos: c.in.SecretsPos}
				switch provider {
				case "age":
					file, ok := "", false
					if c.in.AgeFile != nil {
						file, ok = c.in.AgeFile(ref.name)
					}
					if !ok {
						c.add(CheckSecretProvided, side, o, "references secret %q, but the repository has no age file %s for it (secrets come from age files%s)", ref.name, orName(file, "secrets/"+ref.name+".age"), at(o.Pos))
					}
				default:
					if cfg == nil || !slices.Contains(cfg.Files, ref.name) {
						c.add(CheckSecretProvided, side, o, "references secret %q, which nothing provides: it is not in invariants.secrets.files%s", ref.name, at(o.Pos))
					}
				}
			}
		}
	}
}

func orName(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func at(pos string) string {
	if pos == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", pos)
}
