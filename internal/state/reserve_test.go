package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

// firstRunReport is a first run's report of n files whose specs are those
// of scripts/bench-vs-puppet.sh's site.
func firstRunReport(n int) *reconciler.Report {
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("file:/bench/files/f%04d.conf", i))
	}
	rep := report("rev1", ids...)
	for id, r := range rep.Next.Inventory {
		r.Spec = json.RawMessage(fmt.Sprintf(`{"content":"# managed by the fsgit benchmark\nid = 1\nname = feature-store-0001\nbuffer_pool_size = 129M\nlisten = 127.0.0.1:20001\n","ensure":"present","group":"root","mode":"0640","owner":"root","path":%q}`, strings.TrimPrefix(string(id), "file:")))
		rep.Next.Inventory[id] = r
	}
	return rep
}

// mappedSize is the size of this process's mapping of path, from
// /proc/self/maps (0 when none).
func mappedSize(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	var size uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != path {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil {
			size += h - l
		}
	}
	return size
}

// TestStore_Reserve checks that Options.Reserve maps that much of the file
// from the start, and that a record then leaves the same file, and the
// same memory, as one without.
func TestStore_Reserve(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	rep := firstRunReport(1000)
	sizes := map[int64]int64{}
	for _, reserve := range []int64{0, 1 << 20} {
		path := filepath.Join(t.TempDir(), "state.db")
		s, err := Open(path, Options{Reserve: reserve})
		if err != nil {
			t.Fatal(err)
		}
		if got := mappedSize(t, path); reserve > 0 && got < uint64(reserve) {
			t.Errorf("reserve %d: %d bytes of the file mapped", reserve, got)
		}
		if _, err := s.Record(rep); err != nil {
			t.Fatal(err)
		}
		m, err := s.Memory()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Inventory, rep.Next.Inventory) || !reflect.DeepEqual(m.Observed, rep.Next.Observed) {
			t.Errorf("reserve %d: the memory read back differs from the one recorded", reserve)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes[reserve] = fi.Size()
	}
	if sizes[0] != sizes[1<<20] {
		t.Errorf("file of %d bytes with a 1 MB reserve, %d without", sizes[1<<20], sizes[0])
	}
	// A read-only store maps only the file.
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(path, Options{ReadOnly: true, Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := mappedSize(t, path); got >= 64<<20 {
		t.Errorf("read-only store with a reserve: %d bytes mapped", got)
	}
}

// BenchmarkStore_RecordFirst is a first run's record of 1,000 files into
// a new state file, with and without the reserve the pass gives it.
func BenchmarkStore_RecordFirst(b *testing.B) {
	rep := firstRunReport(1000)
	var ids, specs int64
	for id, r := range rep.Next.Inventory {
		ids += int64(len(id))
		specs += int64(len(r.Spec))
	}
	for _, reserve := range []int64{0, 4 * (ids + specs)} {
		b.Run(fmt.Sprintf("reserve=%d", reserve), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "state.db")
				b.StartTimer()
				s, err := Open(path, Options{Reserve: reserve})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Record(rep); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
