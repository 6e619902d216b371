package pass

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc"
	"github.com/fsgit/fsgit/internal/rootfs"
	"github.com/fsgit/fsgit/reconciler"
)

// benchCatalog is a catalog like the benchmark site's: a directory and n
// files in it.
func benchCatalog(n int) *reconciler.Catalog {
	cat := &reconciler.Catalog{Site: "bench", Node: "bench", Role: "bench", Revision: "sha256:ae74d6862f01b253e6ff3bce9c6e39ab1cab687687f0d94dd4f0ae641778c4fa"}
	cat.Resources = append(cat.Resources, reconciler.Resource{ID: "directory:/bench/files", Mode: reconciler.ModeEnforce,
		Spec: json.RawMessage(`{"ensure":"present","group":"root","mode":"0755","owner":"root","path":"/bench/files"}`)})
	for i := 1; i <= n; i++ {
		path := fmt.Sprintf("/bench/files/f%04d.conf", i)
		content := fmt.Sprintf("# managed by the fsgit benchmark\nid = %d\nname = feature-store-%04d\nbuffer_pool_size = %dM\nlisten = 127.0.0.1:%d\n", i, i, 128+i%40, 20000+i)
		spec, _ := json.Marshal(map[string]string{"content": content, "ensure": "present", "group": "root", "mode": "0644", "owner": "root", "path": path})
		cat.Resources = append(cat.Resources, reconciler.Resource{ID: reconciler.ID("file:" + path), Require: []reconciler.ID{"directory:/bench/files"},
			Mode: reconciler.ModeEnforce, Spec: spec})
	}
	return cat
}

// benchCacheFile is the cache file of benchCatalog(n), as Cache.write
// writes it.
func benchCacheFile(tb testing.TB, n int) []byte {
	tb.Helper()
	b, err := (&CacheFile{Format: CacheFormat, Key: "sha256:5942bf284d9dcf340d481df76ee4464454e37771f57d0e0f73e4d18c19cd7d34",
		Build: "github.com/fsgit/fsgit@(devel) buildid=EzV2D6LHYvFsOcVJM_25/IMG54py493Z-V8Ke3dJN/5oCDPmS2NpFj5KImi5EU/iMIQzYH-ea0ok-MJXKGG",
		Node:  "bench", Catalog: benchCatalog(n)}).Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkCacheFetch: reading the cache file of 1,000 files, as a no-op
// apply does.
func BenchmarkCacheFetch(b *testing.B) {
	dir := b.TempDir()
	data := benchCacheFile(b, 1000)
	if err := os.WriteFile(filepath.Join(dir, "catalog-bench.json"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	fs := rootfs.New(dir)
	defer fs.Close()
	c := &Cache{File: File{fs, "/catalog-bench.json"}, Node: "bench"}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if f := c.fetch(); f.cf == nil {
			b.Fatal(f.why)
		}
	}
}

// BenchmarkDecodeCacheFile: decoding the cache file of 1,000 files, without
// the reading and the build's identity that fetch adds.
func BenchmarkDecodeCacheFile(b *testing.B) {
	data := benchCacheFile(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var cf CacheFile
		if err := decodeCacheFile(data, &cf); err != nil {
			b.Fatal(err)
		}
	}
}

// fullCatalog is a catalog with every field set, and strings that are not
// plain.
func fullCatalog() *reconciler.Catalog {
	return &reconciler.Catalog{Site: "s", Node: "n", Role: "r", Revision: "abc",
		Resources: []reconciler.Resource{
			{ID: "file:/etc/a<b>&c", Require: []reconciler.ID{"directory:/etc", "package:x"}, Notify: []reconciler.ID{"service:s"},
				Mode: reconciler.ModeDetect, AllowDestroy: true, Spec: json.RawMessage(`{"content":"a\"b\n\u00e9 <&> \u2028","n":[1,2.5e3,true,null,{}]}`)},
			{ID: "service:s\u00e9", Mode: "other", Spec: json.RawMessage(`{}`)},
			{ID: "file:/x", Spec: json.RawMessage(`{"a":{"b":[]}}`)},
		},
		KeepCatalogs: 7, MaxHold: jsondoc.Seconds(90*time.Minute + 1), Windows: []reconciler.Window{
			{Days: []string{"mon", "tue"}, Start: "01:00", End: "03:00", Timezone: "Europe/Paris"},
			{Start: "22:00", End: "02:00"},
		}}
}

// cacheSeeds are cache files, as Encode writes them and as they could be.
func cacheSeeds(tb testing.TB) [][]byte {
	enc := func(cf CacheFile) []byte {
		b, err := cf.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	seeds := [][]byte{
		benchCacheFile(tb, 2),
		enc(CacheFile{Format: CacheFormat, Key: "k", Build: "b", Node: "n", Catalog: fullCatalog()}),
		enc(CacheFile{Format: -3, Catalog: &reconciler.Catalog{}}),
		enc(CacheFile{}),
		enc(CacheFile{Format: 1, Key: "k\u00e9", Catalog: &reconciler.Catalog{Resources: []reconciler.Resource{}, Windows: []reconciler.Window{}}}),
	}
	for _, s := range []string{
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[]}}`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[],"maxHold":1e3,"windows":[]}} ` + "\r\n",
		`{"format":1.0,"key":"k","build":"b","node":"n","catalog":null}`,
		`{"format":99999999999999999999,"key":"k","build":"b","node":"n","catalog":null}`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[{"id":"a:b","spec":{}}],"maxHold":"1"}}`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[{"id":"a:b","spec":{}},]}}`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[{"id":"a:b","spec":{"a":}}]}}`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":null}}x`,
		`{"format":1,"key":"k","build":"b","node":"n","catalog":{"site":"s","node":"n","role":"r","resources":[],"windows":[{"days":[],"start":"a","end":"b","timezone":"c"},{"start":"a","end":"b"}]}}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// checkCacheFile: whatever fastCacheFile accepts, json.Unmarshal decodes
// to the same value; and decodeCacheFile always agrees with it.
func checkCacheFile(t *testing.T, b []byte) {
	t.Helper()
	var want CacheFile
	wantErr := json.Unmarshal(b, &want)
	var fast CacheFile
	if fastCacheFile(b, &fast) && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("%q: the fast path gives %+v, json.Unmarshal %+v (%v)", b, fast, want, wantErr)
	}
	var got CacheFile
	err := decodeCacheFile(b, &got)
	if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: decodeCacheFile gives %+v (%v), json.Unmarshal %+v (%v)", b, got, err, want, wantErr)
	}
}

func TestDecodeCacheFile(t *testing.T) {
	for _, b := range cacheSeeds(t) {
		checkCacheFile(t, b)
	}
	// What Encode writes takes the fast path, the spec kept as b's bytes.
	for _, cf := range []CacheFile{
		{Format: CacheFormat, Key: "k", Build: "b", Node: "n", Catalog: fullCatalog()},
		{Format: CacheFormat, Key: "k", Build: "b", Node: "bench", Catalog: benchCatalog(20)},
		{Format: CacheFormat, Catalog: &reconciler.Catalog{}},
	} {
		b, err := cf.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var got CacheFile
		if !fastCacheFile(b, &got) || !reflect.DeepEqual(got, cf) {
			t.Fatalf("%s: not read by the fast path, or read as %+v", b, got)
		}
		for _, r := range got.Catalog.Resources {
			if !within(b, r.Spec) || cap(r.Spec) != len(r.Spec) {
				t.Fatalf("%s: spec %s is not the file's own bytes, capped", r.ID, r.Spec)
			}
		}
	}
}

// within reports whether sub is a part of b's own bytes.
func within(b, sub []byte) bool {
	for i := range b {
		if len(sub) > 0 && &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	return false
}

// FuzzDecodeCacheFile: go test -fuzz FuzzDecodeCacheFile ./internal/pass.
func FuzzDecodeCacheFile(f *testing.F) {
	for _, b := range cacheSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkCacheFile(t, b) })
}
