package pass

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fsgit/fsgit/internal/secrets"
	"github.com/fsgit/fsgit/reconciler"
)

// SecretSources are where a node's secret values come from.
type SecretSources struct {
	// Dir is the node's directory of secret files.
	Dir string
	// IdentityFile is the node's age identity; empty: no age files.
	IdentityFile string
	// Site is the site's secrets/ directory (age files), named Where in
	// messages.
	Site  fs.FS
	Where string
}

// Secrets builds the node's secret chain: with an age identity, the site's
// encrypted files first, then the secrets directory.
func Secrets(s SecretSources) (reconciler.SecretResolver, error) {
	files := secrets.NewFiles(s.Dir)
	if s.IdentityFile == "" {
		return secrets.Chain{files}, nil
	}
	ids, err := secrets.LoadIdentities(s.IdentityFile)
	if err != nil {
		return nil, err
	}
	return secrets.Chain{secrets.NewAge(s.Site, s.Where, ids...), files}, nil
}

// SiteSecrets is Secrets for a site directory on this host: its age files
// are in <site>/secrets.
func SiteSecrets(site, dir, identityFile string) (reconciler.SecretResolver, error) {
	where := filepath.Join(site, "secrets")
	return Secrets(SecretSources{Dir: dir, IdentityFile: identityFile, Site: os.DirFS(where), Where: where})
}
