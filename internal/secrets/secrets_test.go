package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/fsgit/fsgit/reconciler"
)

const value = "hunter2-Sup3rS3cret"

// secretDir returns a root-only directory holding the given secrets.
func secretDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ref(name string) reconciler.SecretRef { return reconciler.SecretRef{Secret: name} }

func TestFiles_Resolve(t *testing.T) {
	dir := secretDir(t, map[string]string{"mariadb/fs_user": value + "\n", "group-readable": "g"})
	if err := os.Chmod(filepath.Join(dir, "group-readable"), 0o640); err != nil {
		t.Fatal(err)
	}
	f := NewFiles(dir)
	s, err := f.Resolve(context.Background(), ref("mariadb/fs_user"))
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Reveal()) != value || s.Name() != "mariadb/fs_user" {
		t.Fatalf("got %q (%s)", s.Reveal(), s.Name())
	}
	if _, err := f.Resolve(context.Background(), ref("group-readable")); err != nil {
		t.Fatalf("a 0640 file was refused: %v", err)
	}
}

func TestFiles_Refuses(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"world readable file", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "s"), 0o644)
		}, "mode 0644 lets others read"},
		{"group writable file", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "s"), 0o660)
		}, "mode 0660"},
		{"open directory", func(t *testing.T, dir string) {
			os.Chmod(dir, 0o755)
		}, "refusing secret directory"},
		{"symlink out of the directory", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "s"))
			if err := os.Symlink(outside, filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
		}, "escapes"},
		{"a directory, not a file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "s"))
			os.Mkdir(filepath.Join(dir, "s"), 0o700)
		}, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := secretDir(t, map[string]string{"s": value})
			c.setup(t, dir)
			_, err := NewFiles(dir).Resolve(context.Background(), ref("s"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
			if errors.Is(err, reconciler.ErrSecretNotFound) {
				t.Fatal("a refused secret reported as missing: a chain would fall through")
			}
		})
	}
	for _, bad := range []string{"../outside", "/etc/shadow", "a//b", ""} {
		if _, err := NewFiles(secretDir(t, nil)).Resolve(context.Background(), ref(bad)); err == nil || !strings.Contains(err.Error(), "invalid secret name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestFiles_NotFound(t *testing.T) {
	dir := secretDir(t, nil)
	for _, d := range []string{dir, filepath.Join(dir, "missing-dir")} {
		_, err := NewFiles(d).Resolve(context.Background(), ref("mariadb/fs_user"))
		if !errors.Is(err, reconciler.ErrSecretNotFound) || !strings.Contains(err.Error(), "secret mariadb/fs_user not found") {
			t.Fatalf("%s: %v", d, err)
		}
	}
}

// ageFile encrypts v to the identity's recipient, armored or not.
func ageFile(t testing.TB, id *age.X25519Identity, v string, armored bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var out io.Writer = &buf
	var aw io.WriteCloser
	if armored {
		aw = armor.NewWriter(&buf)
		out = aw
	}
	w, err := age.Encrypt(out, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, v); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestAge_Resolve(t *testing.T) {
	node, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	fsys := fstest.MapFS{
		"mariadb/fs_user.age": {Data: ageFile(t, node, value+"\n", false)},
		"weaviate/apikey.age": {Data: ageFile(t, node, "k", true)},
		"foreign.age":         {Data: ageFile(t, other, "x", false)},
	}
	a := NewAge(fsys, "sites/example/secrets", node)
	s, err := a.Resolve(context.Background(), ref("mariadb/fs_user"))
	if err != nil || string(s.Reveal()) != value {
		t.Fatalf("binary file: %q %v", s.Reveal(), err)
	}
	if s, err := a.Resolve(context.Background(), ref("weaviate/apikey")); err != nil || string(s.Reveal()) != "k" {
		t.Fatalf("armored file: %q %v", s.Reveal(), err)
	}
	_, err = a.Resolve(context.Background(), ref("foreign"))
	if err == nil || errors.Is(err, reconciler.ErrSecretNotFound) || !strings.Contains(err.Error(), "decrypt sites/example/secrets/foreign.age") {
		t.Fatalf("file for another node: %v", err)
	}
	_, err = a.Resolve(context.Background(), ref("nope"))
	if !errors.Is(err, reconciler.ErrSecretNotFound) || !strings.Contains(err.Error(), "sites/example/secrets/nope.age") {
		t.Fatalf("missing: %v", err)
	}
}

func TestLoadIdentities(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	p := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(p, []byte("# node key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := LoadIdentities(p)
	if err != nil || len(ids) != 1 {
		t.Fatalf("%v %v", ids, err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadIdentities(p); err == nil || !strings.Contains(err.Error(), "lets others read") {
		t.Fatalf("world-readable identity: %v", err)
	}
	os.WriteFile(p, []byte("AGE-SECRET-KEY-1GARBAGE\n"), 0o600)
	os.Chmod(p, 0o600)
	if _, err := LoadIdentities(p); err == nil || strings.Contains(err.Error(), "GARBAGE") {
		t.Fatalf("bad identity: %v (must not echo key material)", err)
	}
}

func TestChain(t *testing.T) {
	node, _ := age.GenerateX25519Identity()
	dir := secretDir(t, map[string]string{"only-in-files": "f", "both": "from files", "open": "o"})
	os.Chmod(filepath.Join(dir, "open"), 0o644)
	fsys := fstest.MapFS{"both.age": {Data: ageFile(t, node, "from age", false)}}
	c := Chain{NewAge(fsys, "secrets", node), NewFiles(dir)}
	for name, want := range map[string]string{"only-in-files": "f", "both": "from age"} {
		s, err := c.Resolve(context.Background(), ref(name))
		if err != nil || string(s.Reveal()) != want {
			t.Errorf("%s: %q %v", name, s.Reveal(), err)
		}
	}
	_, err := c.Resolve(context.Background(), ref("mariadb/fs_user"))
	var nf *NotFoundError
	if !errors.As(err, &nf) || len(nf.Looked) != 2 || !errors.Is(err, reconciler.ErrSecretNotFound) {
		t.Fatalf("missing everywhere: %v", err)
	}
	if _, err := c.Resolve(context.Background(), ref("open")); err == nil || errors.Is(err, reconciler.ErrSecretNotFound) {
		t.Fatalf("a refused file must stop the chain: %v", err)
	}
}

// holder keeps a secret where fmt cannot call its methods: an unexported
// field.
type holder struct {
	user string
	pw   reconciler.Secret
}

// Exported keeps it in an exported field.
type Exported struct {
	PW reconciler.Secret
}

func TestSecret_RedactedEverywhere(t *testing.T) {
	s := reconciler.NewSecret("mariadb/fs_user", []byte(value))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("resolved", "secret", s, "holder", holder{"fs_user", s})
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("resolved", "secret", s, "exported", Exported{s})
	jsonOut, _ := json.Marshal(map[string]any{"s": s, "e": Exported{s}, "h": holder{"u", s}})
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", holder{"fs_user", s}, holder{"fs_user", s}, &holder{"fs_user", s}),
		fmt.Sprintf("%v %+v %#v", Exported{s}, Exported{s}, []reconciler.Secret{s}),
		fmt.Sprintf("%v", map[string]reconciler.Secret{"k": s}),
		fmt.Errorf("wrapping %v", s).Error(),
		string(jsonOut), logged.String(),
	}
	hexValue := fmt.Sprintf("%x", value)
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(strings.ToLower(out), hexValue) || strings.Contains(out, "104 117 110") {
			t.Errorf("a secret leaked: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), "[redacted]") {
		t.Fatal("redaction marker missing")
	}
}
