package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// systemdImage is built by scripts/build-images.sh (debootstrap of Debian
// bookworm with systemd, systemd-sysv and dbus): it boots systemd as PID 1.
const systemdImage = "fsgit.local/systemd:bookworm"

// testLabel marks every container a test starts, so that cleanup (and a
// human) can find leftovers: docker ps -a --filter label=fsgit-test.
const testLabel = "fsgit-test"

// missing skips the test, or fails it under CI=true, where everything the
// test needs must be there.
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// docker runs the docker CLI and returns its combined output, trimmed.
func docker(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// TestKind_liveSystemdContainer runs TestKind_live for real: in a Docker
// container that boots systemd as PID 1 (this host has none), with this
// very test binary copied in. It asserts that the live test ran and passed,
// not skipped.
func TestKind_liveSystemdContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("boots systemd in a Docker container (-short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		missing(t, "the docker CLI is not installed: %v", err)
	}
	if out, err := docker(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		missing(t, "Docker Engine not reachable: %v: %s", err, out)
	}
	if out, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", systemdImage); err != nil {
		missing(t, "image %s is missing (%s): build it with scripts/build-images.sh systemd", systemdImage, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "fsgit-test-systemd-" + hex.EncodeToString(b)
	// What systemd needs to boot in a container on a cgroup v1 host with
	// the cgroupfs driver: the host's cgroup tree (the bind mount is
	// read-only at its top only: systemd writes below it, in the
	// container's own cgroup), tmpfs where it keeps runtime state, and
	// privileges to set up its own mounts. Not --privileged: it asks for
	// every capability, and a sandboxed Docker Engine (this one lacks
	// CAP_SYS_RESOURCE) refuses it; systemd boots without that one.
	out, err := docker(ctx, "run", "-d", "--name", name, "--label", testLabel+"="+name,
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
		"--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp", systemdImage)
	t.Cleanup(func() {
		if out, err := docker(context.Background(), "rm", "-f", "-v", name); err != nil {
			t.Logf("cleanup: removing container %s: %v: %s", name, err, out)
		}
	})
	if err != nil {
		t.Fatalf("start %s: %v: %s", systemdImage, err, out)
	}

	waitBooted(ctx, t, name)

	if out, err := docker(ctx, "cp", self, name+":/service.test"); err != nil {
		t.Fatalf("copy the test binary into %s: %v: %s", name, err, out)
	}
	out, err = docker(ctx, "exec", name, "/service.test",
		"-test.run", "^TestKind_live$", "-test.v", "-test.count=1")
	t.Logf("TestKind_live in %s:\n%s", name, out)
	if err != nil {
		t.Fatalf("TestKind_live in the container: %v", err)
	}
	if !strings.Contains(out, "--- PASS: TestKind_live") || strings.Contains(out, "--- SKIP") {
		t.Fatalf("TestKind_live did not run and pass in the container (see its output above)")
	}
}

// waitBooted waits until systemd in the container says the system is up:
// running, or degraded (a unit failed, which is no concern here).
func waitBooted(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var state string
	for {
		state, _ = docker(ctx, "exec", name, "systemctl", "is-system-running")
		if state == "running" || state == "degraded" {
			return
		}
		if running, _ := docker(ctx, "inspect", "-f", "{{.State.Running}}", name); running == "false" {
			logs, _ := docker(context.Background(), "logs", "--tail", "40", name)
			t.Fatalf("container %s exited while systemd booted; its log:\n%s", name, logs)
		}
		select {
		case <-ctx.Done():
			logs, _ := docker(context.Background(), "logs", "--tail", "40", name)
			t.Fatalf("systemd in %s not up within 90s (is-system-running: %q); its log:\n%s", name, state, logs)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
