package agent

import (
	"log/slog"
	"os"
)

// The git cache's default place, per the FHS: /var/cache holds what can be
// rebuilt (fsgit.service's CacheDirectory=fsgit makes /var/cache/fsgit).
// Agents before it kept the cache under the state directory.
const (
	DefaultCacheDir = "/var/cache/fsgit/git"
	legacyCacheDir  = "/var/lib/fsgit/cache"
)

// gitCacheDir is the directory the git cache is opened in: the configured
// one, except that a node still on the default whose cache is at the old
// default place (an agent installed before the move) keeps using it, so
// that no fetch is repeated and nothing is left behind. Deleting the old
// directory moves the cache at the next start.
func gitCacheDir(configured string, log *slog.Logger) string {
	return cacheDirOf(configured, DefaultCacheDir, legacyCacheDir, log)
}

// cacheDirOf returns legacy when configured is def, def does not exist and
// legacy does; configured otherwise.
func cacheDirOf(configured, def, legacy string, log *slog.Logger) string {
	if configured != def {
		return configured
	}
	if _, err := os.Stat(def); err == nil {
		return def
	}
	if fi, err := os.Stat(legacy); err == nil && fi.IsDir() {
		log.Info("git cache: using the cache at its old place; delete it to move the cache to the new one",
			"dir", legacy, "new", def)
		return legacy
	}
	return def
}
