package atomicfile

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
)

// BenchmarkBatch_1000Files stages 1,000 new files in one directory and
// commits them, as a first run of 1,000 files does.
func BenchmarkBatch_1000Files(b *testing.B) {
	content := []byte("# managed by the fsgit benchmark\nid = 1\nname = feature-store-0001\nbuffer_pool_size = 129M\nlisten = 127.0.0.1:20001\n")
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("f%04d.conf", i)
	}
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		batch := NewBatch()
		for _, n := range names {
			if err := batch.Replace(n, hostDirs{}, filepath.Join(dir, n), Options{UID: -1, GID: -1, Mode: 0o644}, func(w io.Writer) error {
				_, err := w.Write(content)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		if errs := batch.Commit(); errs != nil {
			b.Fatal(errs)
		}
	}
}
