package artifact

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestArtifact_DefaultCacheDir: a new node caches under /var/cache/fsgit;
// a node that has the cache at its old place keeps using it.
func TestArtifact_DefaultCacheDir(t *testing.T) {
	o := newOrigin(t)
	for _, tc := range []struct {
		name    string
		planted []string
		want    string
	}{
		{"new node", nil, DefaultCacheDir},
		{"old cache kept", []string{LegacyCacheDir}, LegacyCacheDir},
		{"both: the new one", []string{LegacyCacheDir, DefaultCacheDir}, DefaultCacheDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.kind = New(Options{MaxRetries: 2, RetryDelay: 10 * time.Millisecond, StallTimeout: 300 * time.Millisecond})
			for _, d := range tc.planted {
				if err := os.MkdirAll(filepath.Join(f.root, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.run(f.resource(o.URL+"/v1.jar", v1, nil)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(entryPath(filepath.Join(f.root, tc.want), hexSum(v1))); err != nil {
				t.Fatalf("cache entry not in %s: %v", tc.want, err)
			}
		})
	}
}
