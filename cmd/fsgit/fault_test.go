//go:build !lean

package main

// The fault-injection suite (issue 22): fsgit's files on real file systems
// that fail the way a node's do — a small tmpfs that fills up, a read-only
// remount, an immutable file. For each, the run reports the fault in one
// sentence, leaves no partial file, and the next run after the fault
// clears converges with no hand action. Mounting needs root (tests here
// run as root); a test skips, saying why, only where the kernel refuses
// the mount.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsgit/fsgit/internal/faulttest"
	"github.com/fsgit/fsgit/internal/pass"
	"github.com/fsgit/fsgit/internal/state"
)

// errorLines returns the lines of stderr that say something went wrong.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "fsgit:") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

type faultRun struct {
	t    *testing.T
	args []string
}

// apply runs fsgit apply --once with the run's arguments and more, and
// checks its exit code.
func (r *faultRun) apply(want int, more ...string) (stdout, stderr string) {
	r.t.Helper()
	code, out, errOut := fsgit(r.t, append(append([]string{"apply", "--once"}, r.args...), more...)...)
	if code != want {
		r.t.Fatalf("apply %v: exit %d, want %d\n%s%s", more, code, want, out, errOut)
	}
	return out, errOut
}

// TestFault_StateCreateDiskFull is issue 22's reproduction: the file
// system of the state file is full (a 300 KB tmpfs, 8 KB free) when the
// first apply creates it. That run fails cleanly, in one sentence, and
// leaves no state file (it used to leave an 8,192-byte one, on which
// every later run died with SIGBUS, exit 2); once space is freed the next
// run converges.
func TestFault_StateCreateDiskFull(t *testing.T) {
	dir := faulttest.Tmpfs(t, "300k")
	free := faulttest.Fill(t, dir, 8<<10)
	statePath := filepath.Join(dir, "state.db")
	r := &faultRun{t: t, args: []string{"--site", sandboxSite(t, ""), "--node", "n1", "--root", filepath.Join(t.TempDir(), "root"), "--state", statePath}}

	_, errOut := r.apply(1)
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "no space left on device") {
		t.Fatalf("want one sentence about the full disk, got:\n%s", errOut)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed creation left a state file: %v", err)
	}
	if left := faulttest.Leftovers(t, dir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	// The full disk again: still a clean error, never a crash.
	r.apply(1)

	free()
	r.apply(2)
	r.apply(0)
}

// TestFault_StateTruncated: a state file cut short (what a full disk left
// before creation was atomic) is moved aside on the next run, loudly, and
// the run converges from observation.
func TestFault_StateTruncated(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state.db")
	r := &faultRun{t: t, args: []string{"--site", sandboxSite(t, ""), "--node", "n1", "--root", filepath.Join(t.TempDir(), "root"), "--state", statePath}}
	r.apply(2)
	if err := os.Truncate(statePath, 8192); err != nil {
		t.Fatal(err)
	}
	// A noop leaves the file where it is and starts from the inventory
	// copy: nothing would change.
	_, errOut := r.apply(0, "--noop")
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "this noop run starts from the inventory copy") {
		t.Fatalf("noop on a corrupt state:\n%s", errOut)
	}
	if fi, err := os.Stat(statePath); err != nil || fi.Size() != 8192 {
		t.Fatalf("noop moved or changed the corrupt file: %v", err)
	}
	_, errOut = r.apply(0)
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "state file corrupt: moved aside") ||
		!strings.Contains(lines[0], "inventory copy's 3 resources") {
		t.Fatalf("want one line saying the state was replaced, got:\n%s", errOut)
	}
	moved, _ := filepath.Glob(statePath + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt files: %v", moved)
	}
	_, errOut = r.apply(0)
	if len(errorLines(errOut)) != 0 {
		t.Fatalf("the next run still complains:\n%s", errOut)
	}
}

// TestFault_StateGrowDiskFull: the state file's file system fills up
// while the node runs; a run that must grow the file (many new resources)
// applies its changes but cannot record them: it says so in one sentence
// (exit code with 4), writes no partial state, cache or inventory copy,
// and the next run once space is freed records everything.
func TestFault_StateGrowDiskFull(t *testing.T) {
	dir := faulttest.Tmpfs(t, "1m")
	statePath := filepath.Join(dir, "state.db")
	var extra strings.Builder
	for i := range 150 {
		fmt.Fprintf(&extra, "\t\t\"file:/etc/app/many/%03d.conf\": {content: \"%s\\n\"}\n", i, strings.Repeat("x", 200))
	}
	small := sandboxSite(t, "")
	big := sandboxSite(t, extra.String())
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"--node", "n1", "--root", root, "--state", statePath, "-v"}
	r := &faultRun{t: t, args: args}
	r.apply(2, "--site", small)
	free := faulttest.Fill(t, dir, 0)

	_, errOut := r.apply(6, "--site", big)
	lines := errorLines(errOut)
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "the run is not recorded") || !strings.Contains(lines[len(lines)-1], "no space left on device") {
		t.Fatalf("want the record failure in one sentence, got:\n%s", errOut)
	}
	if !strings.Contains(errOut, "the compiled catalog is not cached") {
		t.Errorf("the catalog cache's failure is not reported:\n%s", errOut)
	}
	if left := faulttest.Leftovers(t, dir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	if corrupt, _ := filepath.Glob(statePath + ".corrupt-*"); len(corrupt) > 0 {
		t.Fatalf("a full disk was taken for corruption: %v", corrupt)
	}

	free()
	r.apply(0, "--site", big)
	st, err := state.Open(statePath, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := st.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inventory) != 153 {
		t.Fatalf("inventory of %d after recovery, want 153 (150 new files, the directory and two files)", len(m.Inventory))
	}
	c, err := state.ReadInventory(statePath)
	if err != nil || len(c.Inventory) != 153 {
		t.Fatalf("inventory copy: %v", err)
	}
	var cf pass.CacheFile
	if b, err := os.ReadFile(filepath.Join(dir, "catalog-n1.json")); err != nil || json.Unmarshal(b, &cf) != nil || len(cf.Catalog.Resources) != 155 {
		t.Fatalf("catalog cache not written once space is back: %v", err)
	}
}

// TestFault_StateReadOnly: the state's file system remounted read-only.
// An apply says so in one sentence and changes nothing; a noop still
// reads the state; after the remount read-write the next run converges.
func TestFault_StateReadOnly(t *testing.T) {
	dir := faulttest.Tmpfs(t, "1m")
	statePath := filepath.Join(dir, "state.db")
	root := filepath.Join(t.TempDir(), "root")
	r := &faultRun{t: t, args: []string{"--site", sandboxSite(t, ""), "--node", "n1", "--root", root, "--state", statePath}}
	r.apply(2)
	if err := os.WriteFile(filepath.Join(root, "etc/app/a.conf"), []byte("drift"), 0o644); err != nil {
		t.Fatal(err)
	}
	faulttest.Remount(t, dir, true)
	_, errOut := r.apply(1)
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "read-only file system") {
		t.Fatalf("want one sentence about the read-only file system, got:\n%s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/app/a.conf")); string(b) != "drift" {
		t.Fatal("a run that could not open its state changed the node")
	}
	r.apply(2, "--noop")
	faulttest.Remount(t, dir, false)
	r.apply(2)
	r.apply(0)
}

// TestFault_StateImmutable: the state file made immutable (chattr +i).
func TestFault_StateImmutable(t *testing.T) {
	dir := faulttest.Tmpfs(t, "1m")
	statePath := filepath.Join(dir, "state.db")
	r := &faultRun{t: t, args: []string{"--site", sandboxSite(t, ""), "--node", "n1", "--root", filepath.Join(t.TempDir(), "root"), "--state", statePath}}
	r.apply(2)
	faulttest.Chattr(t, "+i", statePath)
	_, errOut := r.apply(1)
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "operation not permitted") {
		t.Fatalf("want one sentence about the immutable file, got:\n%s", errOut)
	}
	faulttest.Chattr(t, "-i", statePath)
	r.apply(0)
}

// TestFault_SummaryDiskFull: the run summary's file system is full: the
// run says so, the old summary stays whole, and the next run writes it.
func TestFault_SummaryDiskFull(t *testing.T) {
	dir := faulttest.Tmpfs(t, "300k")
	summary := filepath.Join(dir, "last_run_summary.json")
	r := &faultRun{t: t, args: []string{"--site", sandboxSite(t, ""), "--node", "n1", "--root", filepath.Join(t.TempDir(), "root"),
		"--state", filepath.Join(t.TempDir(), "state.db"), "--summary", summary}}
	r.apply(2)
	old, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	free := faulttest.Fill(t, dir, 0)
	_, errOut := r.apply(4)
	if lines := errorLines(errOut); len(lines) != 1 || !strings.Contains(lines[0], "write run summary") || !strings.Contains(lines[0], "no space left on device") {
		t.Fatalf("want one sentence about the summary, got:\n%s", errOut)
	}
	if now, _ := os.ReadFile(summary); !bytes.Equal(now, old) {
		t.Fatal("the old summary was damaged")
	}
	if left := faulttest.Leftovers(t, dir); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	free()
	r.apply(0)
	if now, _ := os.ReadFile(summary); bytes.Equal(now, old) || !json.Valid(now) {
		t.Fatal("the summary was not rewritten")
	}
}

// TestFault_ManagedFilesDiskFull: the managed files' file system is full:
// each file that cannot be written fails in one sentence, no partial file
// is left, and the next run after space is freed converges.
func TestFault_ManagedFilesDiskFull(t *testing.T) {
	root := faulttest.Tmpfs(t, "512k")
	var extra strings.Builder
	for i := range 8 {
		fmt.Fprintf(&extra, "\t\t\"file:/srv/data/%d.bin\": {content: strings.Repeat(\"%d\", 40000)}\n", i, i)
	}
	site := sandboxSite(t, extra.String())
	siteFile := filepath.Join(site, "site.cue")
	b, _ := os.ReadFile(siteFile)
	b = bytes.Replace(b, []byte(`import "github.com/fsgit/fsgit/schema"`), []byte("import (\n\t\"strings\"\n\t\"github.com/fsgit/fsgit/schema\"\n)"), 1)
	if err := os.WriteFile(siteFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &faultRun{t: t, args: []string{"--site", site, "--node", "n1", "--root", root, "--state", filepath.Join(t.TempDir(), "state.db")}}
	free := faulttest.Fill(t, root, 100<<10)
	out, errOut := r.apply(6)
	if !strings.Contains(out, "no space left on device") {
		t.Fatalf("the report does not say the disk is full:\n%s%s", out, errOut)
	}
	if left := faulttest.Leftovers(t, root); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	free()
	r.apply(2)
	r.apply(0)
}

// TestFault_ArtifactDiskFull: an artifact's download does not fit on the
// file system of the cache and the managed path: the run fails it in one
// sentence, leaves no partial download, and the next run after space is
// freed downloads and converges.
func TestFault_ArtifactDiskFull(t *testing.T) {
	payload := bytes.Repeat([]byte("model weights "), 30000) // 420 KB
	sum := sha256.Sum256(payload)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(payload) }))
	defer srv.Close()
	root := faulttest.Tmpfs(t, "2m")
	site := sandboxSite(t, fmt.Sprintf("\t\t\"artifact:/opt/model.bin\": {url: %q, sha256: %q}\n", srv.URL+"/model.bin", hex.EncodeToString(sum[:])))
	r := &faultRun{t: t, args: []string{"--site", site, "--node", "n1", "--root", root, "--state", filepath.Join(t.TempDir(), "state.db")}}
	free := faulttest.Fill(t, root, 200<<10)
	out, errOut := r.apply(6)
	if !strings.Contains(out, "artifact:/opt/model.bin") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("the report does not say the download did not fit:\n%s%s", out, errOut)
	}
	if left := faulttest.Leftovers(t, root); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "opt/model.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a partial artifact reached its path: %v", err)
	}
	free()
	r.apply(2)
	r.apply(0)
	if got, _ := os.ReadFile(filepath.Join(root, "opt/model.bin")); !bytes.Equal(got, payload) {
		t.Fatal("artifact content differs")
	}
}
