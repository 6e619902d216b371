package desired

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/sitefiles"
)

// TestVet_KindConstraints feeds one bad value per constraint of a kind to
// fsgit vet and checks the problem's text and its position (the bad
// value's, in the site file). These constraints are the schema's alone:
// the Go kinds do not check them again.
func TestVet_KindConstraints(t *testing.T) {
	cases := []struct {
		name string
		// res is the resource, one line; at is the bad value in it (an ID
		// for a field taken from it).
		res, at string
		// want is in the message.
		want string
	}{
		{"service ensure", `"service:a": ensure: "started"`, `"started"`, `field ensure: conflicting values "running" and "started"`},
		{"service refresh", `"service:a": refresh: "bounce"`, `"bounce"`, `field refresh: conflicting values "reload" and "bounce"`},
		{"user uid too large", `"user:a": uid: 4294967295`, `4294967295`, `field uid: 4294967295 is not a valid #User`},
		{"user uid negative", `"user:a": uid: -1`, `-1`, `field uid: -1 is not a valid #User`},
		{"user group name", `"user:a": group: "Staff"`, `"Staff"`, `field group: "Staff" is not a valid #Name: a user or group name`},
		{"user home relative", `"user:a": home: "home/a"`, `"home/a"`, `field home: "home/a" is not a valid #AbsPath`},
		{"group gid", `"group:a": gid: -1`, `-1`, `field gid: -1 is not a valid #Group`},
		{"container restart", `"docker.container:a": {image: "busybox:1.36", restart: "sometimes"}`, `"sometimes"`, `field restart: "sometimes" is not a valid #DockerContainer`},
		{"container ensure", `"docker.container:a": {image: "busybox:1.36", ensure: "paused"}`, `"paused"`, `field ensure: conflicting values "absent" and "paused"`},
		{"container host port", `"docker.container:a": {image: "busybox:1.36", ports: [{host: 70000, container: 80}]}`, `70000`, `field ports.0.host: 70000 is not a valid #Port: a port number between 1 and 65535`},
		{"container port proto", `"docker.container:a": {image: "busybox:1.36", ports: [{host: 8080, container: 80, proto: "sctp"}]}`, `"sctp"`, `field ports.0.proto: conflicting values "tcp" and "sctp"`},
		{"container env key", `"docker.container:a": {image: "busybox:1.36", env: "A=B": "c"}`, `"A=B"`, `field env."A=B": field not allowed`},
		{"image pull", `"docker.image:busybox:1.36": pull: "often"`, `"often"`, `field pull: conflicting values "always" and "often"`},
		{"image digest", `"docker.image:busybox:1.36": digest: "sha256:xyz"`, `"sha256:xyz"`, `field digest: "sha256:xyz" is not a valid #Digest`},
		{"package ensure", `"package:curl": ensure: "latest!"`, `"latest!"`, `field ensure: "latest!" is not a valid ensure: "installed", "absent" or an exact Debian version`},
		{"exec relative command", `"exec:a": {command: ["sh"], creates: "/x"}`, `"sh"`, `field command.0: "sh" is not a valid #AbsPath`},
		{"exec relative creates", `"exec:a": {command: ["/bin/true"], creates: "x"}`, `"x"`, `field creates: "x" is not a valid #AbsPath`},
		{"exec env key", `"exec:a": {command: ["/bin/true"], creates: "/x", env: "A=B": "c"}`, `"A=B"`, `field env."A=B": field not allowed`},
		{"exec timeout", `"exec:a": {command: ["/bin/true"], creates: "/x", timeout: "1.5m"}`, `"1.5m"`, `field timeout: "1.5m" is not a valid #Duration`},
		{"weaviate url", `"weaviate.class:Doc": url: "ftp://x"`, `"ftp://x"`, `field url: "ftp://x" is not a valid #HTTPURL`},
		{"weaviate property name", `"weaviate.class:Doc": properties: [{name: "9x", dataType: ["text"]}]`, `"9x"`, `field properties.0.name: "9x" is not a valid #WeaviateClass`},
		{"weaviate tokenization", `"weaviate.class:Doc": properties: [{name: "t", dataType: ["text"], tokenization: "trigram"}]`, `"trigram"`, `field properties.0.tokenization: conflicting values "field" and "trigram"`},
		{"artifact sha256", `"artifact:/opt/a.jar": {url: "https://example.org/a.jar", sha256: "abc"}`, `"abc"`, `field sha256: "abc" is not a valid #SHA256`},
		{"artifact maxSize", `"artifact:/opt/a.jar": {url: "https://example.org/a.jar", sha256: "` + strings.Repeat("a", 64) + `", maxSize: -1}`, `-1`, `field maxSize: -1 is not a valid #Artifact`},
		{"mariadb port", `"mariadb.database:a": server: {host: "db", port: 0}`, `0}`, `field server.port: 0 is not a valid #Port`},
		{"service name", `"service:a b": {}`, `"service:a b"`, `field name: "a b" is not a valid #ServiceName`},
		{"user name", `"user:Deploy": {}`, `"user:Deploy"`, `field name: "Deploy" is not a valid #Name`},
		{"user groups", `"user:a": groups: ["a b"]`, `"a b"`, `field groups.0: "a b" is not a valid #Name`},
		{"group gid too large", `"group:a": gid: 4294967295`, `4294967295`, `field gid: 4294967295 is not a valid #Group`},
		{"package name", `"package:Tree": {}`, `"package:Tree"`, `field name: "Tree" is not a valid #PackageName`},
		{"container healthcheck duration", `"docker.container:a": {image: "busybox:1.36", healthcheck: {test: ["CMD", "true"], interval: "soon"}}`, `"soon"`, `field healthcheck.interval: "soon" is not a valid #Duration`},
		{"exec empty unless", `"exec:a": {command: ["/bin/true"], unless: []}`, `unless`, `field unless: incompatible list lengths (0 and 1)`},
		{"symlink empty target", `"symlink:/a": target: ""`, `""`, `field target: "" is not a valid #Symlink`},
		{"file mode", `"file:/etc/a": mode: "0899"`, `"0899"`, `field mode: "0899" is not a valid #Mode`},
		{"iceberg db port", `"iceberg.namespace:a": {namespace: ["a"], catalog: {warehouse: "file:///w", db: {host: "db", port: 0, database: "c", user: "c", password: secret: "c"}}}`, `0,`, `field catalog.db.port: 0 is not a valid #Port`},
		{"file secret key", `"file:/etc/a": {content: "{{secret:1x}}", secrets: "1x": secret: "a/b"}`, `"1x": secret`, `field secrets."1x": field not allowed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := vetResources(t, "{\n\t\t"+c.res+"\n\t}")
			if !HasErrors(probs) {
				t.Fatalf("no problem: %v", probs)
			}
			col := strings.Index("\t\t"+c.res, c.at) + 1
			pos := fmt.Sprintf("sites/s/site.cue:%d:%d", resourcesLine+1, col)
			p := probs[0]
			if p.Pos != pos || !strings.Contains(p.Msg, c.want) {
				t.Errorf("got %s\nwant at %s: ...%s", p, pos, c.want)
			}
		})
	}
}

// TestVet_KindsClosed: every kind's definition, as #Resources applies it,
// refuses a field it does not have (a validator embedded in a definition
// would open it).
func TestVet_KindsClosed(t *testing.T) {
	fields, err := KindFields()
	if err != nil {
		t.Fatal(err)
	}
	for kind := range fields {
		t.Run(kind, func(t *testing.T) {
			probs := vetResources(t, fmt.Sprintf("{for id, r in schema.#Kinds[%q].example {(id): r & {zzUnknown: 1}}}", kind))
			if len(probs) == 0 || !strings.Contains(probs[0].Msg, "field zzUnknown: field not allowed") {
				t.Errorf("got %v, want zzUnknown not allowed", probs)
			}
		})
	}
}

// resourcesLine is the line of vetResources's site file that holds its
// resources.
const resourcesLine = 11

// vetResources vets a site whose one node declares resources (CUE, from
// line resourcesLine of sites/s/site.cue on).
func vetResources(t *testing.T, resources string) []Problem {
	t.Helper()
	src := fmt.Sprintf(`package s

import "github.com/fsgit/fsgit/schema"

schema.#Site
schemaVersion: "v1"
name:          "s"
roles: r: profiles: []
nodes: n: {
	role: "r"
	resources: %s
}
`, resources)
	files := map[string][]byte{"sites/s/site.cue": []byte(src)}
	s, err := Load(context.Background(), Source{FS: sitefiles.NewMemFS(files), SiteDir: "sites/s"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Vet(context.Background())
}
