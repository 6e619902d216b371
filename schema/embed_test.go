package schema

import (
	"os"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// TestModuleFile checks that the repository's cue.mod/module.cue (used by
// the cue command and editors) says what the binary loads sites with.
func TestModuleFile(t *testing.T) {
	src, err := os.ReadFile("../cue.mod/module.cue")
	if err != nil {
		t.Fatal(err)
	}
	ctx := cuecontext.New()
	for name, b := range map[string][]byte{"repository": src, "embedded": ModuleFile()} {
		v := ctx.CompileBytes(b)
		mod, err := v.LookupPath(cue.ParsePath("module")).String()
		if err != nil || mod != ModulePath {
			t.Errorf("%s module.cue: module %q (%v), want %q", name, mod, err, ModulePath)
		}
		lang, err := v.LookupPath(cue.ParsePath("language.version")).String()
		if err != nil || lang != LanguageVersion {
			t.Errorf("%s module.cue: language.version %q (%v), want %q", name, lang, err, LanguageVersion)
		}
	}
}

func TestFiles(t *testing.T) {
	if len(SchemaFiles()) < 4 {
		t.Errorf("schema files %v", SchemaFiles())
	}
	want := map[string]bool{"profile/base.cue": false, "profile/catalog.cue": false, "profile/mariadb_server.cue": false,
		"profile/iceberg_catalog_db.cue": false, "profile/spark_thrift_server.cue": false, "profile/weaviate_node.cue": false}
	for _, f := range ProfileFiles() {
		want[f] = true
	}
	for f, ok := range want {
		if !ok {
			t.Errorf("profile %s not embedded", f)
		}
	}
}
