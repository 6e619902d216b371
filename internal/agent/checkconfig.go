package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/fsgit/fsgit/internal/gitsource"
)

// CheckConfig loads the configuration file at name as LoadConfig does and
// then checks what the schema cannot: that the trusted keys parse and that
// every file and directory it names can be read. It starts nothing and
// writes nothing. It returns the configuration and every problem found,
// each naming the field and the path.
func CheckConfig(schemaFS fs.FS, name string) (*Config, []error) {
	c, err := LoadConfig(schemaFS, name)
	if err != nil {
		return nil, []error{err}
	}
	var errs []error
	if len(c.Source.TrustedKeys) > 0 {
		if _, err := gitsource.LoadVerifier(c.Source.TrustedKeys...); err != nil {
			errs = append(errs, fmt.Errorf("source.trustedKeys: %w", err))
		}
	}
	file := func(field, path string) {
		if path == "" {
			return
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		case fi.IsDir():
			errs = append(errs, fmt.Errorf("%s: %s is a directory, not a file", field, path))
		}
	}
	creds := func(field string, cr *Credentials) {
		if cr == nil {
			return
		}
		file(field+".passwordFile", cr.PasswordFile)
		file(field+".sshKeyFile", cr.SSHKeyFile)
		file(field+".knownHostsFile", cr.KnownHostsFile)
	}
	creds("source.credentials", c.Source.Credentials)
	creds("status.credentials", c.Status.Credentials)
	file("secrets.identityFile", c.Secrets.IdentityFile)
	if c.Secrets.Provider == "age" && c.Secrets.IdentityFile == "" {
		errs = append(errs, errors.New("secrets.identityFile: the age provider needs this node's age identity"))
	}
	if fi, err := os.Stat(c.Secrets.Dir); err != nil {
		errs = append(errs, fmt.Errorf("secrets.dir: %w", err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("secrets.dir: %s is not a directory", c.Secrets.Dir))
	}
	if c.Webhook != nil {
		file("webhook.secretFile", c.Webhook.SecretFile)
	}
	for i, e := range c.Notify.Endpoints {
		file(fmt.Sprintf("notify.endpoints[%d].urlFile", i), e.URLFile)
	}
	return c, errs
}
