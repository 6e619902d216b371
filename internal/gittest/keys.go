package gittest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SSHKey is an ed25519 key pair made with ssh-keygen, without a passphrase.
type SSHKey struct {
	// PrivateFile is the private key's path; PublicFile the public key's.
	PrivateFile string
	PublicFile  string
	// Public is the public key in authorized_keys form.
	Public string
}

// NewSSHKey makes a key pair with ssh-keygen.
func NewSSHKey(tb testing.TB) *SSHKey {
	tb.Helper()
	dir := tb.TempDir()
	priv := filepath.Join(dir, "id_ed25519")
	cmd := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@fsgit", "-f", priv)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		tb.Fatal(err)
	}
	return &SSHKey{PrivateFile: priv, PublicFile: priv + ".pub", Public: strings.TrimSpace(string(pub))}
}

// GPGKey is an OpenPGP signing key made with gpg in a keyring of its own.
type GPGKey struct {
	// Home is the GNUPGHOME holding the key.
	Home string
	// Fingerprint names the key.
	Fingerprint string
	// PublicFile holds the ASCII-armored public key.
	PublicFile string
}

// NewGPGKey makes an ed25519 signing key without a passphrase. The keyring
// lives in a short temporary directory (gpg-agent's socket path is
// limited), and its agent is stopped when the test ends.
func NewGPGKey(tb testing.TB, name, email string) *GPGKey {
	tb.Helper()
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		tb.Fatal(err)
	}
	k := &GPGKey{Home: home}
	tb.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		_ = os.RemoveAll(home)
	})
	k.gpg(tb, "--batch", "--passphrase", "", "--quick-generate-key", name+" <"+email+">", "ed25519", "sign", "never")
	out := k.gpg(tb, "--batch", "--with-colons", "--list-secret-keys")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			k.Fingerprint = f[9]
			break
		}
	}
	if k.Fingerprint == "" {
		tb.Fatalf("no fingerprint in gpg's listing:\n%s", out)
	}
	armored := k.gpg(tb, "--batch", "--armor", "--export", k.Fingerprint)
	k.PublicFile = filepath.Join(tb.TempDir(), "key.asc")
	if err := os.WriteFile(k.PublicFile, []byte(armored+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return k
}

func (k *GPGKey) gpg(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", k.Home}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
