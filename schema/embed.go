// Package schema holds fsgit's CUE contract, embedded in the binary: the
// resource kinds, #Site, #Role, #Node, #Secret and the schema version (the
// .cue files of this directory, CUE package
// "github.com/fsgit/fsgit/schema"), and the default profiles (profile/,
// CUE package "github.com/fsgit/fsgit/schema/profile").
//
// The .cue files are the one source of truth: Go decodes what they produce
// and never re-declares their constraints. This package only embeds them:
// internal/desired is what reads and evaluates CUE (the schema version
// too, desired.SchemaVersion). When fsgit loads a site, the
// embedded schema files replace whatever the repository has at schema/;
// the profiles are replaced only when the repository has none.
package schema

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed *.cue profile/*.cue
var files embed.FS

// ModulePath is the CUE module path of the repository, under which the
// schema is imported ("github.com/fsgit/fsgit/schema").
const ModulePath = "github.com/fsgit/fsgit"

// LanguageVersion is the CUE language version the module declares.
const LanguageVersion = "v0.17.0"

// ImportPath is the import path of the schema package.
const ImportPath = ModulePath + "/schema"

// ProfileImportPath is the import path of the profile package.
const ProfileImportPath = ModulePath + "/schema/profile"

// ModuleFile returns the content of cue.mod/module.cue that fsgit loads
// sites with. The repository's cue.mod/module.cue says the same.
func ModuleFile() []byte {
	return fmt.Appendf(nil, "module: %q\nlanguage: version: %q\n", ModulePath, LanguageVersion)
}

// Files returns the schema package's .cue files, by base name.
func Files() fs.FS {
	return files
}

// SchemaFiles lists the .cue files of the schema package (not the
// profiles), as paths within Files.
func SchemaFiles() []string {
	return globOrPanic("*.cue")
}

// ProfileFiles lists the default profiles' .cue files, as paths within
// Files ("profile/base.cue", ...).
func ProfileFiles() []string {
	return globOrPanic("profile/*.cue")
}

func globOrPanic(pattern string) []string {
	m, err := fs.Glob(files, pattern)
	if err != nil {
		// The patterns are constants: an error is a programming error.
		panic(fmt.Sprintf("schema: glob %q: %v", pattern, err))
	}
	return m
}
