package verify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/desired"
	"github.com/fsgit/fsgit/internal/verify"
	"github.com/fsgit/fsgit/reconciler"
)

// exampleCatalogs evaluates the example site for each of its nodes.
func exampleCatalogs(t *testing.T) []*reconciler.Catalog {
	t.Helper()
	site, err := desired.LoadDir(context.Background(), "../../sites/example")
	if err != nil {
		t.Fatal(err)
	}
	var cats []*reconciler.Catalog
	for _, n := range site.Nodes() {
		c, err := site.Catalog(n)
		if err != nil {
			t.Fatalf("catalog of %s: %v", n, err)
		}
		cats = append(cats, c)
	}
	return cats
}

// TestFromCatalogs_Example finds the three stores in the example site, as
// fsgit verify --site sites/example does.
func TestFromCatalogs_Example(t *testing.T) {
	cfg, err := verify.FromCatalogs(exampleCatalogs(t), verify.Names{})
	if err != nil {
		t.Fatal(err)
	}
	on := cfg.Online
	if on.Node != "online-1" || on.Database != "feature_store_online" || on.Table != "latest_features" ||
		on.User != "fs_user" || on.Password.Secret != "mariadb/fs_user" || on.Socket != "/run/mysqld/mysqld.sock" {
		t.Errorf("online %+v", on)
	}
	off := cfg.Offline
	if off.Node != "offline-1" || off.Table.FullName() != "feature_logs.historical_features" ||
		off.Table.Catalog.Name != "prod_catalog" || off.Table.Catalog.DB.Database != "iceberg_catalog_db" ||
		off.Table.Catalog.DB.Password.Secret != "iceberg/catalog_user" || len(off.Table.Schema.Fields) != 4 {
		t.Errorf("offline %+v", off)
	}
	v := cfg.Vector
	if v.Node != "vector-1" || v.Class != "FeatureMetadata" || v.URL != "http://127.0.0.1:8080" ||
		v.Vectorizer != "text2vec-transformers" || strings.Join(v.Properties, ",") != "name,description" {
		t.Errorf("vector %+v", v)
	}
}

// TestFromCatalogs_Missing names every store it cannot find.
func TestFromCatalogs_Missing(t *testing.T) {
	_, err := verify.FromCatalogs(exampleCatalogs(t), verify.Names{OnlineTable: "nope", OfflineTable: "a.b", Class: "Nope"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"online store: no mariadb.migration creates table nope",
		"offline store: no node's catalog has iceberg.table:a.b",
		"vector store: no node's catalog has weaviate.class:Nope",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
