package gitsource

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Credentials say how to authenticate to a remote. Secrets are read from
// files, so that a configuration file never holds one.
type Credentials struct {
	// Username is the HTTPS user ("git" or a token's owner); for SSH it
	// overrides the user in the URL ("git" if neither says).
	Username string
	// PasswordFile holds an HTTPS password or token.
	PasswordFile string
	// SSHKeyFile holds an unencrypted SSH private key.
	SSHKeyFile string
	// KnownHostsFile holds the SSH server's host key; required with
	// SSHKeyFile, since an unchecked host could serve any site.
	KnownHostsFile string
}

// AuthMethod returns the go-git auth method for repoURL, or nil when the
// credentials are empty.
func (c Credentials) AuthMethod(repoURL string) (transport.AuthMethod, error) {
	if isSSH(repoURL) {
		if c.SSHKeyFile == "" {
			return nil, fmt.Errorf("authenticate to %s: an SSH URL needs an SSH key file", repoURL)
		}
		if c.KnownHostsFile == "" {
			return nil, fmt.Errorf("authenticate to %s: an SSH URL needs a known_hosts file", repoURL)
		}
		user := c.Username
		if user == "" {
			user = sshUser(repoURL)
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, c.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("read SSH key %s: %w", c.SSHKeyFile, err)
		}
		cb, err := knownhosts.New(c.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("read known hosts %s: %w", c.KnownHostsFile, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
	if c.SSHKeyFile != "" {
		return nil, fmt.Errorf("authenticate to %s: an SSH key is set for a URL that is not SSH", repoURL)
	}
	if c.PasswordFile == "" {
		if c.Username != "" {
			return nil, errors.New("authenticate: a username without a password file")
		}
		return nil, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	user := c.Username
	if user == "" {
		user = "git"
	}
	return &githttp.BasicAuth{Username: user, Password: strings.TrimSpace(string(b))}, nil
}

// isSSH reports whether u is an ssh:// URL or scp-like user@host:path.
func isSSH(u string) bool {
	if strings.HasPrefix(u, "ssh://") || strings.HasPrefix(u, "git+ssh://") {
		return true
	}
	if strings.Contains(u, "://") {
		return false
	}
	at, colon := strings.Index(u, "@"), strings.Index(u, ":")
	return colon > 0 && (at < 0 || at < colon)
}

func sshUser(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil && p.User.Username() != "" {
		return p.User.Username()
	}
	if before, _, ok := strings.Cut(u, "@"); ok && !strings.Contains(before, "/") && !strings.Contains(before, ":") {
		return before
	}
	return "git"
}
