package agent

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/reconciler"
)

// TestAgent_AgeSecrets: a secret kept age-encrypted in the site's
// secrets/ directory reaches the file that uses it, and never the status.
func TestAgent_AgeSecrets(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	w, err := age.Encrypt(&enc, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("s3cr3t-value\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(map[string]any{
		"path": "/etc/app/db.conf", "content": "password={{secret:DB}}\n", "owner": "root", "group": "root", "mode": "0600",
		"ensure": "present", "secrets": map[string]reconciler.SecretRef{"DB": {Secret: "mariadb/fs_user"}},
	})
	s := newSite(t)
	s.work.WriteFile("sites/test/secrets/mariadb/fs_user.age", enc.String())
	c1 := s.push("with a secret", map[string]string{"n1": catalogJSON(t, reconciler.Resource{ID: "file:/etc/app/db.conf", Spec: spec})})

	idFile := filepath.Join(t.TempDir(), "node.agekey")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "n1", s.url, "100ms", `secrets: {provider: "age", identityFile: "`+idFile+`", dir: "`+t.TempDir()+`"}`)
	n.secrets = func(cfg SecretsConfig, site fs.FS) (reconciler.SecretResolver, error) {
		ids, err := secrets.LoadIdentities(cfg.IdentityFile)
		if err != nil {
			return nil, err
		}
		return secrets.Chain{secrets.NewAge(site, "secrets", ids...), secrets.NewFiles(cfg.Dir)}, nil
	}
	n.start()
	waitFor(t, "converged", func() bool { st := n.agent.Status(); return st.Converged && st.AppliedRevision == c1 })
	if got := n.read("/etc/app/db.conf"); got != "password=s3cr3t-value\n" {
		t.Fatalf("db.conf = %q", got)
	}
	doc := fleetNode(t, s.url, "n1")
	waitFor(t, "status published", func() bool { doc = fleetNode(t, s.url, "n1"); return doc != nil && doc.Converged })
	b, _ := json.Marshal(doc)
	if bytes.Contains(b, []byte("s3cr3t")) {
		t.Fatalf("secret in the status: %s", b)
	}
	if bytes.Contains([]byte(n.logs.String()), []byte("s3cr3t")) {
		t.Fatal("secret in the log")
	}
}
