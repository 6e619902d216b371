package crash

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FSGIT_CRASH_DIR", dir)
	var out bytes.Buffer
	if code := Report(&out, "boom\nsecond line", []byte("goroutine 1 [running]:\nmain.main()")); code != 1 {
		t.Fatalf("code %d", code)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "fsgit: internal error: boom second line (details in "+dir) {
		t.Fatalf("message %q", line)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "fsgit-crash-*.txt"))
	if len(files) != 1 {
		t.Fatalf("crash files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "panic: boom") || !strings.Contains(string(b), "main.main()") {
		t.Fatalf("crash file:\n%s", b)
	}
}

// TestExit panics on a goroutine of a child process: it exits 1 (not the
// runtime's 2) with one line on stderr.
func TestExit(t *testing.T) {
	if os.Getenv("CRASH_TEST_CHILD") == "1" {
		done := make(chan struct{})
		go func() {
			defer Exit()
			var m map[string]int
			m["x"] = 1 // a runtime panic
			close(done)
		}()
		<-done
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExit$")
	cmd.Env = append(os.Environ(), "CRASH_TEST_CHILD=1", "FSGIT_CRASH_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("child: %v, stderr %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "fsgit: internal error: assignment to entry in nil map (details in "+dir) {
		t.Fatalf("stderr %q", stderr.String())
	}
}
