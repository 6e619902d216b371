package mariadb

import (
	"encoding/json"

	"github.com/fsgit/fsgit/reconciler"
)

var _ reconciler.SpecRememberer[MigrationSpec] = (*MigrationKind)(nil)

// rememberedMigration is a migration as the node's inventory keeps it:
// the script's SHA-256 (its checksum, as fsgit_schema_migrations records
// it) instead of the script.
type rememberedMigration struct {
	Version   int    `json:"version"`
	Name      string `json:"name"`
	SQLSHA256 string `json:"sqlSha256"`
}

// RememberSpec returns the spec the node keeps in its inventory: every
// script replaced by its SHA-256. PlanDelete needs nothing of it (a
// migration that leaves the catalog undoes nothing), and equal checksums
// mean equal scripts.
func (*MigrationKind) RememberSpec(_ *reconciler.Resource, s *MigrationSpec) (json.RawMessage, error) {
	out := struct {
		Database   string                `json:"database"`
		Migrations []rememberedMigration `json:"migrations"`
		Server     Server                `json:"server"`
	}{Database: s.Database, Server: s.Server}
	for _, m := range s.Migrations {
		out.Migrations = append(out.Migrations, rememberedMigration{Version: m.Version, Name: m.Name, SQLSHA256: m.checksum()})
	}
	return json.Marshal(out)
}
