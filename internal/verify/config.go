package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fsgit/fsgit/reconciler"
	"github.com/fsgit/fsgit/reconciler/iceberg"
)

// Config is what the four steps need: where each store is and which secret
// holds each credential. [FromCatalogs] reads it from a site's catalogs.
type Config struct {
	Online  Online
	Offline Offline
	Vector  Vector
}

// Online is the online store: the MariaDB table latest_features and the
// application user that writes it.
type Online struct {
	// Node is the node whose catalog declared it.
	Node string
	// Socket, or Host and Port, reach the server.
	Socket string
	Host   string
	Port   int
	// Database and Table hold the latest values.
	Database string
	Table    string
	// User and Password are the application's login (fs_user).
	User     string
	Password reconciler.SecretRef
}

// Offline is the offline store: an Iceberg table of the JDBC catalog.
type Offline struct {
	// Node is the node whose catalog declared it.
	Node string
	// Table is the table's spec (catalog, identifier, schema).
	Table iceberg.TableSpec
}

// Vector is the vector store: a Weaviate class.
type Vector struct {
	// Node is the node whose catalog declared it.
	Node string
	// URL is Weaviate's base URL; Class the class name.
	URL   string
	Class string
	// APIKey is the secret holding Weaviate's API key, if any.
	APIKey *reconciler.SecretRef
	// Vectorizer is the class's vectorizer module.
	Vectorizer string
	// Properties are the class's property names.
	Properties []string
}

// Names selects the stores in the catalogs.
type Names struct {
	// OnlineTable is the online store's table (default latest_features).
	OnlineTable string
	// OfflineTable is "namespace.table" (default
	// feature_logs.historical_features).
	OfflineTable string
	// Class is the Weaviate class (default FeatureMetadata).
	Class string
}

func (n *Names) defaults() {
	if n.OnlineTable == "" {
		n.OnlineTable = "latest_features"
	}
	if n.OfflineTable == "" {
		n.OfflineTable = "feature_logs.historical_features"
	}
	if n.Class == "" {
		n.Class = "FeatureMetadata"
	}
}

// The parts of the mariadb.* and weaviate.class specs that verify reads
// (see docs/kinds.md); other fields are ignored.
type (
	serverSpec struct {
		Socket    string `json:"socket"`
		Host      string `json:"host"`
		Port      int    `json:"port"`
		AdminUser string `json:"adminUser"`
	}
	migrationStep struct {
		SQL string `json:"sql"`
	}
	migrationSpec struct {
		Database   string          `json:"database"`
		Migrations []migrationStep `json:"migrations"`
		Server     serverSpec      `json:"server"`
	}
	grantSpec struct {
		User       string     `json:"user"`
		Host       string     `json:"host"`
		Database   string     `json:"database"`
		Privileges []string   `json:"privileges"`
		Ensure     string     `json:"ensure"`
		Server     serverSpec `json:"server"`
	}
	userSpec struct {
		User     string                `json:"user"`
		Host     string                `json:"host"`
		Ensure   string                `json:"ensure"`
		Password *reconciler.SecretRef `json:"password"`
		Server   serverSpec            `json:"server"`
	}
	classSpec struct {
		URL        string                `json:"url"`
		APIKey     *reconciler.SecretRef `json:"apiKey"`
		Class      string                `json:"class"`
		Vectorizer string                `json:"vectorizer"`
		Ensure     string                `json:"ensure"`
		Properties []struct {
			Name string `json:"name"`
		} `json:"properties"`
	}
)

// FromCatalogs finds the three stores in the catalogs of a site's nodes:
//
//   - online: the mariadb.migration whose SQL creates names.OnlineTable
//     gives the database; the mariadb.grant on that database that allows
//     INSERT and UPDATE to a user other than the admin gives the user; that
//     user's mariadb.user resource gives its password secret and the
//     server's socket or host.
//   - offline: the iceberg.table named names.OfflineTable.
//   - vector: the weaviate.class named names.Class.
//
// It reports every store it cannot find, naming what it looked for.
func FromCatalogs(cats []*reconciler.Catalog, names Names) (*Config, error) {
	names.defaults()
	cfg := &Config{}
	var errs []error
	if err := findOnline(cats, names.OnlineTable, &cfg.Online); err != nil {
		errs = append(errs, fmt.Errorf("online store: %w", err))
	}
	if err := findOffline(cats, names.OfflineTable, &cfg.Offline); err != nil {
		errs = append(errs, fmt.Errorf("offline store: %w", err))
	}
	if err := findVector(cats, names.Class, &cfg.Vector); err != nil {
		errs = append(errs, fmt.Errorf("vector store: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func decode(r *reconciler.Resource, v any) error {
	if err := json.Unmarshal(r.Spec, v); err != nil {
		return fmt.Errorf("decode %s: %w", r.ID, err)
	}
	return nil
}

func findOnline(cats []*reconciler.Catalog, tableName string, out *Online) error {
	createRE := regexp.MustCompile("(?i)create\\s+table\\s+(if\\s+not\\s+exists\\s+)?`?" + regexp.QuoteMeta(tableName) + "`?[\\s(]")
	for _, c := range cats {
		for i := range c.Resources {
			r := &c.Resources[i]
			if r.Kind() != "mariadb.migration" {
				continue
			}
			var m migrationSpec
			if err := decode(r, &m); err != nil {
				return err
			}
			if !slices.ContainsFunc(m.Migrations, func(x migrationStep) bool { return createRE.MatchString(x.SQL) }) {
				continue
			}
			user, err := findWriter(c, m.Database, m.Server.AdminUser)
			if err != nil {
				return fmt.Errorf("node %s, database %s (from %s): %w", c.Node, m.Database, r.ID, err)
			}
			*out = Online{
				Node: c.Node, Database: m.Database, Table: tableName,
				Socket: user.Server.Socket, Host: user.Server.Host, Port: user.Server.Port,
				User: user.User, Password: *user.Password,
			}
			return nil
		}
	}
	return fmt.Errorf("no mariadb.migration creates table %s in any node's catalog", tableName)
}

// findWriter returns the mariadb.user that a grant on db allows to insert
// and update, other than the admin.
func findWriter(c *reconciler.Catalog, db, admin string) (*userSpec, error) {
	if admin == "" {
		admin = "root"
	}
	for i := range c.Resources {
		r := &c.Resources[i]
		if r.Kind() != "mariadb.grant" {
			continue
		}
		var g grantSpec
		if err := decode(r, &g); err != nil {
			return nil, err
		}
		if g.Ensure == "absent" || g.Database != db || g.User == admin || !allows(g.Privileges, "INSERT", "UPDATE") {
			continue
		}
		host := g.Host
		if host == "" {
			host = "localhost"
		}
		ur := c.Lookup(reconciler.NewID("mariadb.user", g.User+"@"+host))
		if ur == nil {
			return nil, fmt.Errorf("%s names user %s@%s, which has no mariadb.user resource", r.ID, g.User, host)
		}
		var u userSpec
		if err := decode(ur, &u); err != nil {
			return nil, err
		}
		if u.Password == nil || u.Password.IsZero() {
			return nil, fmt.Errorf("%s has no password secret", ur.ID)
		}
		return &u, nil
	}
	return nil, errors.New("no mariadb.grant gives INSERT and UPDATE on it to a user other than the admin")
}

func allows(privs []string, want ...string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(privs, func(p string) bool {
			p = strings.ToUpper(p)
			return p == w || p == "ALL" || p == "ALL PRIVILEGES"
		}) {
			return false
		}
	}
	return true
}

func findOffline(cats []*reconciler.Catalog, name string, out *Offline) error {
	id := reconciler.NewID("iceberg.table", name)
	for _, c := range cats {
		r := c.Lookup(id)
		if r == nil {
			continue
		}
		s, err := iceberg.DecodeTableSpec(r)
		if err != nil {
			return err
		}
		*out = Offline{Node: c.Node, Table: *s}
		return nil
	}
	return fmt.Errorf("no node's catalog has %s", id)
}

func findVector(cats []*reconciler.Catalog, class string, out *Vector) error {
	id := reconciler.NewID("weaviate.class", class)
	for _, c := range cats {
		r := c.Lookup(id)
		if r == nil {
			continue
		}
		var s classSpec
		if err := decode(r, &s); err != nil {
			return err
		}
		if s.Class == "" {
			s.Class = class
		}
		if s.URL == "" {
			s.URL = "http://127.0.0.1:8080"
		}
		v := Vector{Node: c.Node, URL: strings.TrimSuffix(s.URL, "/"), Class: s.Class, APIKey: s.APIKey, Vectorizer: s.Vectorizer}
		for _, p := range s.Properties {
			v.Properties = append(v.Properties, p.Name)
		}
		*out = v
		return nil
	}
	return fmt.Errorf("no node's catalog has %s", id)
}
