package mariadb

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// TestMigration_RemembersChecksums: the inventory keeps each script's
// checksum, never the script.
func TestMigration_RemembersChecksums(t *testing.T) {
	spec := []byte(`{"database":"fs","migrations":[{"version":1,"name":"init","sql":"CREATE TABLE secret_looking_script (id INT)"}],` +
		`"server":{"socket":"/run/mysqld/mysqld.sock","port":3306,"adminUser":"root"}}`)
	r := &reconciler.Resource{ID: "mariadb.migration:fs", Spec: spec}
	if err := reconciler.NewTyped(&MigrationKind{}).Validate(r); err != nil {
		t.Fatal(err)
	}
	got, err := reconciler.NewTyped(&MigrationKind{}).RememberSpec(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte("CREATE TABLE")) {
		t.Fatalf("the script is remembered: %s", got)
	}
	var m struct {
		Migrations []rememberedMigration `json:"migrations"`
	}
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	want := Migration{Version: 1, Name: "init", SQL: "CREATE TABLE secret_looking_script (id INT)"}.checksum()
	if len(m.Migrations) != 1 || m.Migrations[0].SQLSHA256 != want || m.Migrations[0].Version != 1 {
		t.Fatalf("remembered %s", got)
	}
}
