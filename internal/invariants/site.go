package invariants

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/fsgit/fsgit/internal/desired"
)

// FromSite builds the input of Check from a loaded site and the valid
// catalogs of its nodes (desired.Site.VetCatalogs, or CatalogSources for
// each node): the nodes' names, fqdns and addresses, the site's
// invariants field, and the age files of its secrets/ directory.
func FromSite(site *desired.Site, cats []desired.NodeCatalog) (Input, error) {
	in := Input{InSite: site.InSite}
	if _, err := site.Decode(&in.Config, "invariants"); err != nil {
		return in, fmt.Errorf("site %s: invariants: %w", site.Name(), err)
	}
	if in.Config.Secrets != nil {
		in.SecretsPos = site.Pos("invariants", "secrets", "provider")
	}
	for _, nc := range cats {
		name := nc.Catalog.Node
		n := Node{Name: name, Role: nc.Catalog.Role, FQDN: site.FQDN(name), At: func() string { return site.Pos("nodes", name) }, Catalog: nc.Catalog, Where: nc.Sources}
		var addr string
		if ok, _ := site.Decode(&addr, "nodes", name, "address"); ok {
			n.Address = addr
		}
		in.Nodes = append(in.Nodes, n)
	}
	fsys, dir, display := site.Files()
	secrets := path.Join(dir, "secrets")
	if fi, err := fs.Stat(fsys, secrets); err == nil && fi.IsDir() {
		in.AgeFile = func(name string) (string, bool) {
			file := path.Join(secrets, name+".age")
			fi, err := fs.Stat(fsys, file)
			return display(file), err == nil && fi.Mode().IsRegular()
		}
	}
	return in, nil
}
